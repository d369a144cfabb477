#include "server/options.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/command_line.h"

namespace agate::server {

std::string ListenAddress::grpc_uri() const {
  if (is_unix) return absl::StrCat("unix:", path);
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

std::string ListenAddress::ToString(int chosen_port) const {
  if (is_unix) return absl::StrCat("unix:", path);
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", chosen_port);
  return absl::StrCat(host, ":", chosen_port);
}

absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& text) {
  ListenAddress a;
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("--listen ", text, ": ", why));
  };
  if (absl::StartsWith(text, "unix:")) {
    a.is_unix = true;
    a.path = text.substr(5);
    if (a.path.empty()) return bad("expected unix:PATH");
    if (a.path.size() > 100) return bad("a Unix socket path is limited to 100 bytes");
    return a;
  }
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) return bad("expected host:port or unix:PATH");
  a.host = text.substr(0, colon);
  if (absl::StartsWith(a.host, "[") && absl::EndsWith(a.host, "]")) {
    a.host = a.host.substr(1, a.host.size() - 2);
  } else if (absl::StrContains(a.host, ':')) {
    return bad("write IPv6 addresses in brackets, e.g. [::1]:7878");
  }
  if (a.host.empty()) return bad("the host is missing (e.g. 127.0.0.1:7878)");
  if (!absl::SimpleAtoi(text.substr(colon + 1), &a.port) || a.port < 0 || a.port > 65535) {
    return bad("the port must be a number in [0, 65535]");
  }
  return a;
}

const char* ServerUsage() {
  return R"(usage: agate-server --matrix FILE [--listen ADDR]... [options]

Serves the escalation matrix FILE over gRPC (service agate.v1.Agate, health, reflection).

  --matrix FILE            the escalation matrix (YAML); required
  --listen ADDR            host:port, [v6]:port or unix:PATH; repeatable (default 127.0.0.1:7878);
                           port 0 picks a free port (the log says which)
  --log-level LEVEL        trace, debug, info (default), warn, error, off
  --log-format FORMAT      text (default) or json
  --max-request-bytes N    larger requests get RESOURCE_EXHAUSTED (default 1048576)
  --drain-timeout D        on SIGTERM/SIGINT, wait this long for calls in flight (default 10s)
  --webhook URL            POST every case transition as JSON to URL (http:// or https://)
  --help, --version

Exit status: 0 after a clean shutdown, 1 if it cannot start, 2 for a usage error.
)";
}

absl::StatusOr<ServerOptions> ParseServerOptions(const std::vector<std::string>& args) {
  absl::StatusOr<CommandLine> cl =
      CommandLine::Parse(args, {.values = {"matrix", "listen", "log-level", "log-format",
                                           "max-request-bytes", "drain-timeout", "webhook"},
                                .booleans = {"help", "version"}});
  if (!cl.ok()) return cl.status();
  ServerOptions o;
  o.help = cl->Has("help");
  o.version = cl->Has("version");
  if (o.help || o.version) return o;
  if (!cl->positional().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument '", cl->positional()[0], "'"));
  }
  std::optional<std::string> matrix = cl->Value("matrix");
  if (!matrix.has_value() || matrix->empty()) {
    return absl::InvalidArgumentError("--matrix FILE is required");
  }
  o.matrix = *matrix;
  std::vector<std::string> listen = cl->All("listen");
  if (listen.empty()) listen.push_back(kDefaultListen);
  for (const std::string& l : listen) {
    absl::StatusOr<ListenAddress> a = ParseListenAddress(l);
    if (!a.ok()) return a.status();
    o.listen.push_back(*a);
  }
  o.log_level = cl->Value("log-level").value_or(o.log_level);
  o.log_format = cl->Value("log-format").value_or(o.log_format);
  absl::StatusOr<int64_t> bytes = cl->Int("max-request-bytes", o.max_request_bytes);
  if (!bytes.ok()) return bytes.status();
  if (*bytes < 1024 || *bytes > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError("--max-request-bytes: must be in [1024, 1073741824]");
  }
  o.max_request_bytes = *bytes;
  absl::StatusOr<absl::Duration> drain = cl->Duration("drain-timeout", o.drain_timeout);
  if (!drain.ok()) return drain.status();
  o.drain_timeout = *drain;
  o.webhook = cl->Value("webhook").value_or("");
  return o;
}

}  // namespace agate::server
