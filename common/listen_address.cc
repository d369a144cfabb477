#include "common/listen_address.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace agate {

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

}  // namespace agate
