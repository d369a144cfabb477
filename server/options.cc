#include "server/options.h"

#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/command_line.h"
#include "common/status_macros.h"

namespace agate::server {

const char* ServerUsage() {
  return R"(usage: agate-server --matrix FILE [--listen ADDR]... [options]

Serves the escalation matrix FILE over gRPC (service agate.v1.Agate, health, reflection) and,
with --http-listen, over HTTP/JSON with Prometheus /metrics.

  --matrix FILE            the escalation matrix (YAML); required
  --listen ADDR            host:port, [v6]:port or unix:PATH; repeatable (default 127.0.0.1:7878);
                           port 0 picks a free port (the log says which)
  --http-listen ADDR       also serve the HTTP/JSON API, /metrics, /healthz and /readyz on
                           host:port (default: off); port 0 picks a free port (the log says
                           which); TLS with --tls-cert/--tls-key as gRPC, bearer tokens only
  --http-threads N         the HTTP listener's threads: requests served at once, each open
                           /v1/cases:watch stream holding one (default 16; at most half of them
                           stream)
  --console-dir DIR        serve the operator console at / on --http-listen from DIR (default:
                           the one this build made, console/ built into BUILD/console); a DIR
                           that is missing or has no index.html stops the server
  --log-level LEVEL        trace, debug, info (default), warn, error, off
  --log-format FORMAT      text (default) or json
  --max-request-bytes N    larger requests get RESOURCE_EXHAUSTED (default 1048576)
  --drain-timeout D        on SIGTERM/SIGINT, wait this long for calls in flight (default 10s)
  --webhook URL            POST every case transition as JSON to URL (http:// or https://)
  --shadow-matrix FILE     shadow mode: decide every request against the candidate matrix FILE
                           too, after answering with the live one (no cases, no effect on the
                           answer); `agate shadow --server ADDR` reports what it would change.
                           Loaded and reloaded with the live matrix (SIGHUP, --watch)
  --capture-requests DIR   write each request decided to DIR/requests.jsonl in the `agate eval`
                           input format, redacted as the matrix's capture: {redact: [...]} says
                           (default: off)
  --capture-max-bytes N    stop capturing when the file would pass N bytes (default 67108864)
  --watch                  reload the matrix when its file changes (SIGHUP always reloads it)
  --watch-interval D       how often --watch looks at the file (default 1s)
  --max-in-flight N        Evaluate calls in flight past which new ones get RESOURCE_EXHAUSTED
                           (default 256; 0: no bound)
  --max-connections N      connections open at once on the plaintext listeners; past it a new
                           one is closed at once (default: the file descriptor limit, which
                           agate-server raises to its hard limit, minus 256)
  --max-connection-idle D  close a connection that had no call for D (default 10m; off: never);
                           a WatchCases stream is a call
  --max-connection-age D   ask a connection older than D to reconnect (GOAWAY; default off)
  --max-connection-age-grace D
                           then close it after D more, cutting the calls still on it, WatchCases
                           streams included (default off: they finish on the old connection)
  --max-watchers N         WatchCases streams open at once; past it a new one gets
                           RESOURCE_EXHAUSTED (default 1000)
  --max-watchers-per-principal N
                           the same per verified principal (default 100; with an access policy)
  --socket-mode MODE       a unix: listener's permissions (default 0660)
  --socket-group GROUP     a unix: listener's group (default: the server's)
  --store KIND             sqlite (default): cases, decisions and the decision log persist in
                           --data-dir; memory: nothing on disk (lost on restart); postgres:
                           cases and decisions in the PostgreSQL database --postgres-url, shared
                           by every replica on it (the decision log stays in --data-dir)
  --postgres-url URL       the database of --store postgres (a libpq URL or connection string,
                           e.g. postgresql://agate@db.internal:5432/agate); agate creates and
                           migrates its tables
  --postgres-poll D        how often a replica reads the other replicas' changes (default 50ms):
                           the bound on how late a scope in force or a watch event arrives
  --replica-id NAME        this replica's name in the database (default: host name and pid)
  --data-dir DIR           where the sqlite store keeps agate.db and decisions/ (default
                           ./agate-data); one server per data dir
  --fsync                  fsync every commit and decision-log write: survive a power loss, not
                           only a crash (slower escalations)
  --idempotency-window D   the same tenant_id + request_id within D gets the same decision
                           (default 10m), or within the newest --idempotency-entries N
                           decisions (default 200000, about 220 bytes of memory each)
  --max-store-bytes N      cap the database at N bytes (default 0: no cap); past it escalations
                           fail with UNAVAILABLE as on a full disk
  --max-closed-case-bytes N
                           keep closed cases (for GetCase/ListCases) up to about N bytes,
                           forgetting the oldest first; the newest is always kept (default
                           16777216)
  --max-open-cases N       past N open cases, a decision that would open one fails with
                           RESOURCE_EXHAUSTED (default 1000000)
  --max-open-cases-per-tenant N
                           the same per tenant, naming it (default 100000; 0: no quota)
  --max-open-case-bytes N  once the open cases hold N bytes (protobuf's count; the process
                           uses about twice that), new ones are refused likewise; joins go on
                           (default 536870912: about 200,000 cases with little evidence)
  --max-evidence-entry-bytes N
                           a case keeps the first N bytes of each evidence entry, with the
                           whole entry's size and SHA-256 (default 16384)
  --max-evidence-case-bytes N
                           and at most N bytes of evidence in all (default 262144)
  --decision-log-rotate-bytes N
                           start a new decision-log file past N bytes (default 67108864)
  --decision-log-max-files N
                           keep the newest N decision-log files, removing older ones (default
                           0: keep all; about 400 bytes per decision)

Identity (docs/security.md):
  --access FILE            the access policy (YAML): agents, operators, admins, token issuers;
                           every call then needs a verified principal. Without it (or with
                           --auth none) the server runs in development mode: callers are not
                           verified, and only loopback and Unix-socket listeners are allowed
  --auth none              development mode, explicitly (refused together with --access)
  --tls-cert FILE          serve TLS on every TCP listener with this certificate (PEM) ...
  --tls-key FILE           ... and its private key; both re-read on SIGHUP and with --watch
  --client-ca FILE         verify client certificates against these CAs (mutual TLS); a caller
                           without one must carry a bearer token
  --require-client-cert    refuse TLS connections that present no valid client certificate
  --mtls-listen ADDR       a TCP listener that requires a client certificate (an agents-only
                           port) beside the --listen ones; repeatable; needs --client-ca

  --help, --version

Exit status: 0 after a clean shutdown, 1 if it cannot start, 2 for a usage error.
)";
}

namespace {

bool IsLoopback(const ListenAddress& a) {
  return a.is_unix || a.host == "localhost" || a.host == "::1" || absl::StartsWith(a.host, "127.");
}

// ParseIdentityOptions reads the identity and TLS flags and checks that they fit together and
// with the listeners: plaintext never leaves loopback, and with an access policy every TCP
// listener uses TLS.
absl::Status ParseIdentityOptions(const CommandLine& cl, ServerOptions* o) {
  o->access = cl.Value("access").value_or("");
  if (std::optional<std::string> auth = cl.Value("auth")) {
    if (*auth != "none") {
      return absl::InvalidArgumentError(
          absl::StrCat("--auth: only 'none' (development mode) is a mode; got '", *auth,
                       "': for verified callers give --access FILE"));
    }
    if (!o->access.empty()) {
      return absl::InvalidArgumentError(
          "--auth none and --access contradict each other: an access policy verifies every "
          "caller; drop one");
    }
  }
  o->tls_cert = cl.Value("tls-cert").value_or("");
  o->tls_key = cl.Value("tls-key").value_or("");
  o->client_ca = cl.Value("client-ca").value_or("");
  o->require_client_cert = cl.Has("require-client-cert");
  if (o->tls_cert.empty() != o->tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  const bool tls = !o->tls_cert.empty();
  if (!o->client_ca.empty() && !tls) {
    return absl::InvalidArgumentError("--client-ca needs TLS: add --tls-cert and --tls-key");
  }
  if (o->require_client_cert && o->client_ca.empty()) {
    return absl::InvalidArgumentError(
        "--require-client-cert needs --client-ca (the CAs client certificates are checked "
        "against)");
  }
  for (const std::string& l : cl.All("mtls-listen")) {
    absl::StatusOr<ListenAddress> a = ParseListenAddress(l);
    if (!a.ok()) return a.status();
    if (a->is_unix) return absl::InvalidArgumentError("--mtls-listen: a TCP address, not unix:");
    if (o->client_ca.empty()) {
      return absl::InvalidArgumentError("--mtls-listen needs --client-ca");
    }
    o->mtls_listen.push_back(*a);
  }
  // Plaintext never leaves loopback; with an access policy every TCP listener uses TLS.
  auto check_plaintext = [&](absl::string_view flag, const ListenAddress& a) -> absl::Status {
    if (a.is_unix || tls) return absl::OkStatus();
    if (!o->access.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, " ", a.ToString(a.port),
                       ": with --access every TCP listener uses TLS: add "
                       "--tls-cert FILE --tls-key FILE (or listen on a unix: socket)"));
    }
    if (!IsLoopback(a)) {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, " ", a.ToString(a.port),
          ": plaintext on a non-loopback address lets anyone on "
          "the network decide: add --tls-cert FILE --tls-key FILE and --access FILE, or listen on "
          "127.0.0.1 or a unix: socket"));
    }
    return absl::OkStatus();
  };
  for (const ListenAddress& a : o->listen) RETURN_IF_ERROR(check_plaintext("--listen", a));
  if (o->http_listen.has_value()) {
    RETURN_IF_ERROR(check_plaintext("--http-listen", *o->http_listen));
  }
  return absl::OkStatus();
}

// DurationOrOff reads a duration flag that may also say "off" (absl::InfiniteDuration()); a
// duration is in [100ms, 366d].
absl::StatusOr<absl::Duration> DurationOrOff(const CommandLine& cl, const char* flag,
                                             absl::Duration fallback) {
  if (cl.Value(flag) == "off") return absl::InfiniteDuration();
  absl::StatusOr<absl::Duration> d = cl.Duration(flag, fallback);
  if (!d.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(d.status().message(), ", or off (no limit)"));
  }
  if (*d < absl::Milliseconds(100)) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": must be at least 100ms, or off"));
  }
  return d;
}

}  // namespace

absl::StatusOr<ServerOptions> ParseServerOptions(const std::vector<std::string>& args) {
  absl::StatusOr<CommandLine> cl = CommandLine::Parse(
      args, {.values = {"matrix",
                        "listen",
                        "log-level",
                        "log-format",
                        "max-request-bytes",
                        "drain-timeout",
                        "webhook",
                        "store",
                        "postgres-url",
                        "postgres-poll",
                        "replica-id",
                        "data-dir",
                        "idempotency-window",
                        "idempotency-entries",
                        "max-store-bytes",
                        "max-closed-case-bytes",
                        "max-open-cases",
                        "max-open-cases-per-tenant",
                        "max-open-case-bytes",
                        "max-evidence-entry-bytes",
                        "max-evidence-case-bytes",
                        "decision-log-rotate-bytes",
                        "decision-log-max-files",
                        "watch-interval",
                        "max-in-flight",
                        "access",
                        "auth",
                        "tls-cert",
                        "tls-key",
                        "client-ca",
                        "mtls-listen",
                        "max-connections",
                        "max-connection-idle",
                        "max-connection-age",
                        "max-connection-age-grace",
                        "max-watchers",
                        "max-watchers-per-principal",
                        "socket-mode",
                        "socket-group",
                        "http-listen",
                        "http-threads",
                        "console-dir",
                        "shadow-matrix",
                        "capture-requests",
                        "capture-max-bytes"},
             .booleans = {"help", "version", "fsync", "watch", "require-client-cert"}});
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
  if (std::optional<std::string> shadow = cl->Value("shadow-matrix")) {
    if (shadow->empty()) return absl::InvalidArgumentError("--shadow-matrix: a FILE is required");
    o.shadow_matrix = *shadow;
  }
  if (std::optional<std::string> capture = cl->Value("capture-requests")) {
    if (capture->empty()) {
      return absl::InvalidArgumentError("--capture-requests: a DIR is required");
    }
    o.capture_requests = *capture;
  }
  absl::StatusOr<int64_t> capture_bytes =
      cl->Int("capture-max-bytes", static_cast<int64_t>(o.capture_max_bytes));
  if (!capture_bytes.ok()) return capture_bytes.status();
  if (*capture_bytes < 1024) {
    return absl::InvalidArgumentError("--capture-max-bytes: must be at least 1024");
  }
  if (cl->Value("capture-max-bytes").has_value() && o.capture_requests.empty()) {
    return absl::InvalidArgumentError(
        "--capture-max-bytes: only means something with --capture-requests");
  }
  o.capture_max_bytes = static_cast<uint64_t>(*capture_bytes);
  std::vector<std::string> listen = cl->All("listen");
  if (listen.empty()) listen.push_back(kDefaultListen);
  for (const std::string& l : listen) {
    absl::StatusOr<ListenAddress> a = ParseListenAddress(l);
    if (!a.ok()) return a.status();
    o.listen.push_back(*a);
  }
  if (std::optional<std::string> http = cl->Value("http-listen")) {
    absl::StatusOr<ListenAddress> a = ParseListenAddress(*http);
    if (!a.ok()) {
      absl::string_view why = a.status().message();
      absl::ConsumePrefix(&why, "--listen ");  // ParseListenAddress names --listen
      return absl::InvalidArgumentError(absl::StrCat("--http-listen ", why));
    }
    if (a->is_unix) {
      return absl::InvalidArgumentError("--http-listen: a TCP address (host:port), not unix:");
    }
    o.http_listen = *a;
  }
  absl::StatusOr<int64_t> http_threads = cl->Int("http-threads", o.http_threads);
  if (!http_threads.ok()) return http_threads.status();
  if (*http_threads < 2 || *http_threads > 1024) {
    return absl::InvalidArgumentError("--http-threads: must be in [2, 1024]");
  }
  if (cl->Value("http-threads").has_value() && !o.http_listen.has_value()) {
    return absl::InvalidArgumentError("--http-threads: only means something with --http-listen");
  }
  o.http_threads = *http_threads;
  if (std::optional<std::string> console = cl->Value("console-dir")) {
    if (!o.http_listen.has_value()) {
      return absl::InvalidArgumentError("--console-dir: only means something with --http-listen");
    }
    if (console->empty()) return absl::InvalidArgumentError("--console-dir: a directory is needed");
    o.console_dir = *console;
  }
  if (std::optional<std::string> level = cl->Value("log-level")) {
    absl::StatusOr<LogLevel> parsed = ParseLogLevel(*level);
    if (!parsed.ok()) return parsed.status();
    o.log_level = *parsed;
  }
  if (std::optional<std::string> format = cl->Value("log-format")) {
    absl::StatusOr<LogFormat> parsed = ParseLogFormat(*format);
    if (!parsed.ok()) return parsed.status();
    o.log_format = *parsed;
  }
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
  o.watch = cl->Has("watch");
  absl::StatusOr<absl::Duration> interval = cl->Duration("watch-interval", o.watch_interval);
  if (!interval.ok()) return interval.status();
  if (*interval < absl::Milliseconds(10) || *interval > absl::Hours(1)) {
    return absl::InvalidArgumentError("--watch-interval: must be in [10ms, 1h]");
  }
  if (cl->Value("watch-interval").has_value() && !o.watch) {
    return absl::InvalidArgumentError("--watch-interval: only means something with --watch");
  }
  o.watch_interval = *interval;
  absl::StatusOr<int64_t> in_flight = cl->Int("max-in-flight", o.max_in_flight);
  if (!in_flight.ok()) return in_flight.status();
  if (*in_flight > 1'000'000) {
    return absl::InvalidArgumentError("--max-in-flight: must be in [0, 1000000] (0: no bound)");
  }
  o.max_in_flight = *in_flight;
  if (std::optional<std::string> store = cl->Value("store")) {
    if (*store == "sqlite") {
      o.store = StoreKind::kSqlite;
    } else if (*store == "memory") {
      o.store = StoreKind::kMemory;
    } else if (*store == "postgres") {
      o.store = StoreKind::kPostgres;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--store: must be sqlite, memory or postgres, got '", *store, "'"));
    }
  }
  o.postgres_url = cl->Value("postgres-url").value_or("");
  if (o.store == StoreKind::kPostgres && o.postgres_url.empty()) {
    return absl::InvalidArgumentError("--postgres-url: required with --store postgres");
  }
  if (o.store != StoreKind::kPostgres && !o.postgres_url.empty()) {
    return absl::InvalidArgumentError("--postgres-url: only with --store postgres");
  }
  o.replica_id = cl->Value("replica-id").value_or("");
  if (o.replica_id.size() > 256) {
    return absl::InvalidArgumentError("--replica-id: longer than 256 bytes");
  }
  absl::StatusOr<absl::Duration> poll = cl->Duration("postgres-poll", o.postgres_poll);
  if (!poll.ok()) return poll.status();
  if (*poll < absl::Milliseconds(1) || *poll > absl::Seconds(10)) {
    return absl::InvalidArgumentError("--postgres-poll: must be in [1ms, 10s]");
  }
  o.postgres_poll = *poll;
  o.data_dir = cl->Value("data-dir").value_or(o.data_dir);
  if (o.data_dir.empty()) return absl::InvalidArgumentError("--data-dir: empty path");
  o.fsync = cl->Has("fsync");
  absl::StatusOr<absl::Duration> window = cl->Duration("idempotency-window", o.idempotency_window);
  if (!window.ok()) return window.status();
  if (*window < absl::Seconds(1) || *window > absl::Hours(24 * 7)) {
    return absl::InvalidArgumentError("--idempotency-window: must be in [1s, 7d]");
  }
  o.idempotency_window = *window;
  absl::StatusOr<int64_t> entries = cl->Int("idempotency-entries", o.idempotency_entries);
  if (!entries.ok()) return entries.status();
  if (*entries < 1000 || *entries > 100'000'000) {
    return absl::InvalidArgumentError("--idempotency-entries: must be in [1000, 100000000]");
  }
  o.idempotency_entries = *entries;
  absl::StatusOr<int64_t> cap = cl->Int("max-store-bytes", 0);
  if (!cap.ok()) return cap.status();
  if (*cap < 0) return absl::InvalidArgumentError("--max-store-bytes: must be >= 0");
  o.max_store_bytes = static_cast<uint64_t>(*cap);
  absl::StatusOr<int64_t> closed =
      cl->Int("max-closed-case-bytes", static_cast<int64_t>(o.max_closed_case_bytes));
  if (!closed.ok()) return closed.status();  // a negative number is refused there
  o.max_closed_case_bytes = static_cast<uint64_t>(*closed);
  for (auto [flag, value, minimum] : {
           std::tuple{"max-open-cases", &o.max_open_cases, 1},
           std::tuple{"max-open-cases-per-tenant", &o.max_open_cases_per_tenant, 0},
           std::tuple{"max-open-case-bytes", &o.max_open_case_bytes, 1},
           std::tuple{"max-evidence-entry-bytes", &o.max_evidence_entry_bytes, 0},
           std::tuple{"max-evidence-case-bytes", &o.max_evidence_case_bytes, 0},
       }) {
    absl::StatusOr<int64_t> n = cl->Int(flag, static_cast<int64_t>(*value));
    if (!n.ok()) return n.status();
    if (*n < minimum) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, ": must be >= ", minimum));
    }
    *value = static_cast<uint64_t>(*n);
  }
  absl::StatusOr<int64_t> rotate =
      cl->Int("decision-log-rotate-bytes", static_cast<int64_t>(o.decision_log_rotate_bytes));
  if (!rotate.ok()) return rotate.status();
  if (*rotate < 4096) {
    return absl::InvalidArgumentError("--decision-log-rotate-bytes: must be >= 4096");
  }
  o.decision_log_rotate_bytes = static_cast<uint64_t>(*rotate);
  absl::StatusOr<int64_t> max_files = cl->Int("decision-log-max-files", 0);
  if (!max_files.ok()) return max_files.status();
  if (*max_files < 0) return absl::InvalidArgumentError("--decision-log-max-files: must be >= 0");
  o.decision_log_max_files = static_cast<uint64_t>(*max_files);
  RETURN_IF_ERROR(ParseIdentityOptions(*cl, &o));
  absl::StatusOr<int64_t> connections = cl->Int("max-connections", 0);
  if (!connections.ok()) return connections.status();
  o.max_connections = *connections;
  for (auto [flag, value] : {std::pair{"max-connection-idle", &o.max_connection_idle},
                             std::pair{"max-connection-age", &o.max_connection_age},
                             std::pair{"max-connection-age-grace", &o.max_connection_age_grace}}) {
    absl::StatusOr<absl::Duration> d = DurationOrOff(*cl, flag, *value);
    if (!d.ok()) return d.status();
    *value = *d;
  }
  for (auto [flag, value] :
       {std::pair{"max-watchers", &o.max_watchers},
        std::pair{"max-watchers-per-principal", &o.max_watchers_per_principal}}) {
    absl::StatusOr<int64_t> n = cl->Int(flag, *value);
    if (!n.ok()) return n.status();
    if (*n < 1 || *n > 1'000'000) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, ": must be in [1, 1000000]"));
    }
    *value = *n;
  }
  if (std::optional<std::string> mode = cl->Value("socket-mode")) {
    unsigned int bits = 0;
    if (mode->empty() || mode->size() > 4 ||
        !absl::numbers_internal::safe_strtou32_base(*mode, &bits, 8) || bits > 0777) {
      return absl::InvalidArgumentError(
          absl::StrCat("--socket-mode: an octal mode like 0660, got '", *mode, "'"));
    }
    o.socket_mode = static_cast<mode_t>(bits);
  }
  o.socket_group = cl->Value("socket-group").value_or("");
  return o;
}

}  // namespace agate::server
