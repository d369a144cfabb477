// ServerOptions: agate-server's command line, parsed and checked (errors name the flag), and
// the listen addresses it accepts.
#ifndef AGATE_SERVER_OPTIONS_H_
#define AGATE_SERVER_OPTIONS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/listen_address.h"
#include "server/logging.h"

namespace agate::server {

// Where cases and decisions persist (--store).
enum class StoreKind { kSqlite, kMemory, kPostgres };

// The default --max-in-flight (docs/operations.md, "Overload", says how it was chosen).
inline constexpr int64_t kDefaultMaxInFlight = 256;

struct ServerOptions {
  std::string matrix;
  std::vector<ListenAddress> listen;
  LogLevel log_level = LogLevel::kInfo;
  LogFormat log_format = LogFormat::kText;
  int64_t max_request_bytes = 1 << 20;
  absl::Duration drain_timeout = absl::Seconds(10);
  std::string webhook;
  // Shadow mode: a candidate matrix every request is also decided by (service/live_shadow.h);
  // "": off. Reloaded with the live matrix.
  std::string shadow_matrix;
  // Request capture (store/request_capture.h): the directory ("": off) and its size bound.
  std::string capture_requests;
  uint64_t capture_max_bytes = uint64_t{64} << 20;
  // Hot reload: poll the matrix file every watch_interval and reload it when it changed.
  bool watch = false;
  absl::Duration watch_interval = absl::Seconds(1);
  // Evaluate calls in flight past which new ones get RESOURCE_EXHAUSTED; 0: no bound.
  int64_t max_in_flight = kDefaultMaxInFlight;
  // Durability: "sqlite" (default: cases, decisions and the decision log in data_dir) or
  // "memory" (nothing on disk: tests, ephemeral sidecars).
  StoreKind store = StoreKind::kSqlite;
  // --store postgres: the database (a libpq URL), this replica's name (default: host name and
  // pid) and how often it reads the other replicas' changes.
  std::string postgres_url;
  std::string replica_id;
  absl::Duration postgres_poll = absl::Milliseconds(50);
  std::string data_dir = "agate-data";
  bool fsync = false;  // fsync every commit and log write (power-loss durability)
  absl::Duration idempotency_window = absl::Minutes(10);
  int64_t idempotency_entries = 200'000;
  uint64_t max_store_bytes = 0;  // 0: no cap
  // Memory for closed cases kept for GetCase/ListCases (cases::CaseStoreOptions).
  uint64_t max_closed_case_bytes = uint64_t{16} << 20;
  // Bounds of the open cases and the evidence they keep (cases::CaseStoreOptions).
  uint64_t max_open_cases = 1'000'000;
  uint64_t max_open_cases_per_tenant = 100'000;  // 0: no quota
  uint64_t max_open_case_bytes = uint64_t{512} << 20;
  uint64_t max_evidence_entry_bytes = uint64_t{16} << 10;
  uint64_t max_evidence_case_bytes = uint64_t{256} << 10;
  uint64_t decision_log_rotate_bytes = 64 << 20;
  uint64_t decision_log_max_files = 0;  // 0: keep every file
  // Identity (server/identity.h): the access policy ("": development mode), TLS on TCP
  // listeners, mutual TLS.
  std::string access;
  std::string tls_cert;
  std::string tls_key;
  std::string client_ca;
  bool require_client_cert = false;
  std::vector<ListenAddress> mtls_listen;  // TCP listeners that require a client certificate
  // Connections: at most this many open at once on the plaintext listeners (0: from the file
  // descriptor limit, keeping headroom); a Unix socket's mode and group.
  int64_t max_connections = 0;
  // gRPC's connection limits (channel args): a connection with no call for max_connection_idle
  // is closed; one older than max_connection_age is sent GOAWAY and closed after
  // max_connection_age_grace more (its calls, WatchCases streams included, may finish within it).
  // absl::InfiniteDuration(): no limit.
  absl::Duration max_connection_idle = absl::Minutes(10);
  absl::Duration max_connection_age = absl::InfiniteDuration();
  absl::Duration max_connection_age_grace = absl::InfiniteDuration();
  // WatchCases streams open at once, in all and per verified principal (server/watcher_quota.h).
  int64_t max_watchers = 1000;
  int64_t max_watchers_per_principal = 100;
  // The HTTP/JSON API (server/http_api.h): where it listens (nullopt: off) and its threads.
  std::optional<ListenAddress> http_listen;
  int64_t http_threads = 16;
  // The operator console's built files (ConsoleFiles); nullopt: the ones this build made, if any.
  std::optional<std::string> console_dir;
  mode_t socket_mode = 0660;
  std::string socket_group;
  bool help = false;
  bool version = false;
};

inline constexpr char kDefaultListen[] = "127.0.0.1:7878";

// ParseServerOptions reads the arguments after the program name.
absl::StatusOr<ServerOptions> ParseServerOptions(const std::vector<std::string>& args);

// ServerUsage is the --help text.
const char* ServerUsage();

}  // namespace agate::server

#endif  // AGATE_SERVER_OPTIONS_H_
