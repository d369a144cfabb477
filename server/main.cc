// agate-server: serves an escalation matrix over gRPC. See `agate-server --help`.
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <climits>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "engine/matrix.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/acceptor.h"
#include "server/api.h"
#include "server/console_files.h"
#include "server/grpc_service.h"
#include "server/http_api.h"
#include "server/http_server.h"
#include "server/identity.h"
#include "server/listeners.h"
#include "server/logging.h"
#include "server/maintenance.h"
#include "server/matrix_reloader.h"
#include "server/options.h"
#include "server/tls.h"
#include "server/webhook.h"
#include "service/service.h"
#include "spdlog/spdlog.h"
#include "store/decision_log.h"
#include "store/postgres_store.h"
#include "store/request_capture.h"
#include "store/sqlite_store.h"

namespace agate::server {
namespace {

constexpr char kVersion[] = "agate-server 0.1.0";

// A start-up failure: what to print and the exit code (1: cannot start, 2: usage).
struct Failure {
  int exit_code;
  std::string message;
};

// LoadMatrix loads the matrix (what: "matrix" or "shadow matrix"), printing its errors (and
// logging its warnings).
absl::StatusOr<std::shared_ptr<const engine::Matrix>> LoadMatrix(
    const std::string& path, absl::string_view what = "matrix") {
  std::vector<engine::Diagnostic> diagnostics;
  absl::StatusOr<std::shared_ptr<const engine::Matrix>> matrix =
      engine::LoadMatrixFile(path, &diagnostics);
  for (const engine::Diagnostic& d : diagnostics) {
    if (d.severity == engine::Severity::kError) {
      std::cerr << d.ToString() << "\n";
    } else {
      spdlog::warn("{}", d.ToString());
    }
  }
  if (!matrix.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the ", what, " ", path, " is invalid; not starting"));
  }
  spdlog::info("loaded {} {} (name {}, version {}): {} lanes, {} triggers", std::string(what), path,
               (*matrix)->name(), (*matrix)->version(), (*matrix)->lanes().size(),
               (*matrix)->triggers().size());
  return matrix;
}

// The durable store (the data dir's SQLite database, or a PostgreSQL database shared by replicas)
// and the decision log in the data dir (docs/operations.md "Durability", docs/scale.md).
struct Storage {
  std::unique_ptr<store::DurableStore> durable;
  std::unique_ptr<store::DecisionLog> decision_log;
};

// ReplicaId names this replica in a shared database: --replica-id, or host name and pid.
std::string ReplicaId(const ServerOptions& options) {
  if (!options.replica_id.empty()) return options.replica_id;
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host, "/", getpid());
}

absl::StatusOr<Storage> OpenStorage(const ServerOptions& options) {
  Storage storage;
  if (options.store == StoreKind::kMemory) {
    spdlog::warn("--store memory: cases and decisions are not persisted (lost on restart)");
    return storage;
  }
  if (options.store == StoreKind::kPostgres) {
    ASSIGN_OR_RETURN(storage.durable, store::PostgresStore::Open(
                                          {.url = options.postgres_url,
                                           .replica = ReplicaId(options),
                                           .decision_retention = options.idempotency_window}));
    spdlog::info("store: postgres {} as replica {} (reading the others' changes every {})",
                 storage.durable->where(), ReplicaId(options),
                 absl::FormatDuration(options.postgres_poll));
  } else {
    ASSIGN_OR_RETURN(
        storage.durable,
        store::SqliteStore::Open({.dir = options.data_dir,
                                  .fsync = options.fsync,
                                  .decision_retention = options.idempotency_window,
                                  .max_decisions = static_cast<size_t>(options.idempotency_entries),
                                  .max_bytes = options.max_store_bytes}));
  }
  absl::StatusOr<std::unique_ptr<store::DecisionLog>> log =
      store::DecisionLog::Open({.dir = absl::StrCat(options.data_dir, "/decisions"),
                                .rotate_bytes = options.decision_log_rotate_bytes,
                                // What a kill -9 can cut off of the ALLOW records.
                                .flush_interval = absl::Milliseconds(2),
                                .max_files = options.decision_log_max_files,
                                .fsync = options.fsync});
  if (!log.ok()) {
    return absl::Status(log.status().code(),
                        absl::StrCat("decision log: ", log.status().message()));
  }
  storage.decision_log = *std::move(log);
  return storage;
}

absl::StatusOr<std::unique_ptr<service::Service>> CreateService(
    const ServerOptions& options, std::shared_ptr<const engine::Matrix> matrix,
    const Storage& storage) {
  service::ServiceOptions service_options;
  service_options.idempotency.window = options.idempotency_window;
  service_options.idempotency.max_entries = static_cast<size_t>(options.idempotency_entries);
  cases::CaseStoreOptions& cases = service_options.decider.cases;
  cases.max_closed_case_bytes = static_cast<size_t>(options.max_closed_case_bytes);
  cases.max_open_cases = static_cast<size_t>(options.max_open_cases);
  cases.max_open_cases_per_tenant = static_cast<size_t>(options.max_open_cases_per_tenant);
  cases.max_open_case_bytes = static_cast<size_t>(options.max_open_case_bytes);
  cases.max_evidence_entry_bytes = static_cast<size_t>(options.max_evidence_entry_bytes);
  cases.max_evidence_case_bytes = static_cast<size_t>(options.max_evidence_case_bytes);
  service_options.store = storage.durable.get();
  service_options.decision_log = storage.decision_log.get();
  absl::StatusOr<std::unique_ptr<service::Service>> service =
      service::Service::Create(std::move(matrix), RealClock(), service_options);
  if (service.status().code() == absl::StatusCode::kResourceExhausted) {
    // The idempotency cache reserves its memory up front: strict overcommit or ulimit -v.
    return absl::ResourceExhaustedError(absl::StrCat("--idempotency-entries ",
                                                     options.idempotency_entries, ": ",
                                                     service.status().message(), "; lower it"));
  }
  if (!service.ok() && storage.durable != nullptr) {
    return absl::Status(service.status().code(),
                        absl::StrCat("cannot recover from ", storage.durable->where(), ": ",
                                     service.status().message()));
  }
  if (service.ok() && storage.durable != nullptr) {
    const service::Recovery& r = (*service)->recovery();
    spdlog::info(
        "store {}: recovered {} cases ({} open), {} decisions within the idempotency window, {} "
        "count() keys",
        storage.durable->where(), r.cases, r.open_cases, r.decisions, r.signal_keys);
  }
  return service;
}

// RaiseFileLimit raises the soft limit on open files to the hard limit and returns it: a server
// with many connections must not run out at 1,024.
int64_t RaiseFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    const rlim_t before = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) == 0) {
      spdlog::info("open files: raised the limit from {} to {}", before, limit.rlim_cur);
    } else {
      getrlimit(RLIMIT_NOFILE, &limit);
    }
  }
  return limit.rlim_cur == RLIM_INFINITY ? int64_t{1} << 20 : static_cast<int64_t>(limit.rlim_cur);
}

// A running gRPC server and the acceptors of its plaintext listeners.
struct Grpc {
  std::vector<std::unique_ptr<Acceptor>> acceptors;
  std::unique_ptr<grpc::Server> server;
};

// StartGrpc builds the gRPC server on every --listen and --mtls-listen address and logs where it
// listens: TCP with TLS when tls is not null (gRPC accepts those), the plaintext ones (Unix
// sockets, loopback TCP in development mode) through agate's own acceptors.
absl::StatusOr<Grpc> StartGrpc(const ServerOptions& options, GrpcService& grpc_service,
                               const TlsFiles* tls) {
  const int64_t files = RaiseFileLimit();
  const int64_t max_connections =
      options.max_connections > 0 ? options.max_connections : std::max<int64_t>(16, files - 256);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (options.max_in_flight > 0) {
    // Per connection, the HTTP/2 stream limit makes a client queue (and time out) its excess
    // calls itself; across connections GrpcService sheds what is past the bound.
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                               static_cast<int>(options.max_in_flight));
  }
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_request_bytes));
  // Connection limits, enforced by gRPC's max_age filter on every connection, the acceptors'
  // too (AddInsecureChannelFromFd builds them with the server's channel args).
  const std::pair<const char*, absl::Duration> connection_limits[] = {
      {GRPC_ARG_MAX_CONNECTION_IDLE_MS, options.max_connection_idle},
      {GRPC_ARG_MAX_CONNECTION_AGE_MS, options.max_connection_age},
      {GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, options.max_connection_age_grace},
  };
  for (const auto& [arg, limit] : connection_limits) {
    if (limit == absl::InfiniteDuration()) continue;  // gRPC's default: no limit
    builder.AddChannelArgument(
        arg, static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(limit), INT_MAX)));
  }
  struct Listener {
    ListenAddress address;
    std::shared_ptr<grpc::ServerCredentials> credentials;  // null: an acceptor's
    const char* what;
  };
  std::vector<Listener> listeners;
  for (const ListenAddress& a : options.listen) {
    if (a.is_unix || tls == nullptr) {
      listeners.push_back({a, nullptr, ""});
    } else {
      listeners.push_back({a, tls->ServerCredentials(options.require_client_cert),
                           options.client_ca.empty() ? " (TLS)" : " (TLS, client certificates)"});
    }
  }
  for (const ListenAddress& a : options.mtls_listen) {
    listeners.push_back({a, tls->ServerCredentials(/*require_client_cert=*/true),
                         " (TLS, client certificate required)"});
  }
  Grpc grpc;
  std::vector<int> ports(listeners.size(), 0);
  std::vector<Acceptor*> acceptor_of(listeners.size(), nullptr);
  for (size_t i = 0; i < listeners.size(); ++i) {
    if (listeners[i].credentials != nullptr) {
      builder.AddListeningPort(listeners[i].address.grpc_uri(), listeners[i].credentials,
                               &ports[i]);
      continue;
    }
    absl::StatusOr<std::unique_ptr<Acceptor>> acceptor =
        Acceptor::Listen(listeners[i].address, {.max_connections = max_connections,
                                                .socket_mode = options.socket_mode,
                                                .socket_group = options.socket_group});
    if (!acceptor.ok()) return acceptor.status();
    ports[i] = (*acceptor)->port();
    acceptor_of[i] = acceptor->get();
    grpc.acceptors.push_back(*std::move(acceptor));
  }
  builder.RegisterService(&grpc_service);
  grpc.server = builder.BuildAndStart();
  if (grpc.server == nullptr) {
    return absl::UnavailableError("cannot start the gRPC server on the given addresses");
  }
  for (size_t i = 0; i < listeners.size(); ++i) {
    const ListenAddress& a = listeners[i].address;
    if (!a.is_unix && ports[i] == 0) {
      grpc.server->Shutdown();
      return absl::UnavailableError(absl::StrCat("cannot listen on ", a.ToString(0)));
    }
    if (acceptor_of[i] != nullptr) acceptor_of[i]->Start(grpc.server.get());
    spdlog::info("listening on {}{}", a.ToString(ports[i]), listeners[i].what);
  }
  if (!grpc.acceptors.empty()) {
    spdlog::info("at most {} connections open at once on the plaintext listeners", max_connections);
  }
  if (options.max_in_flight > 0) {
    spdlog::info("at most {} Evaluate calls in flight (--max-in-flight)", options.max_in_flight);
  }
  grpc.server->GetHealthCheckService()->SetServingStatus("agate.v1.Agate", true);
  return grpc;
}

// Reloadables: what SIGHUP and --watch re-read.
struct Reloadables {
  MatrixReloader& matrix;
  MatrixReloader* shadow;  // null without --shadow-matrix
  Identity& identity;
  TlsFiles* tls;  // null without TLS
};

// AwaitTermination handles signals until SIGTERM or SIGINT: SIGHUP reloads the matrix, the access
// policy and the TLS files. Signals were blocked in main before any thread started: only this
// thread sees them.
void AwaitTermination(const ServerOptions& options, const Reloadables& reload) {
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, s);
  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP: reloading {}", options.matrix);
      // Each logs its outcome; a failure keeps what was serving.
      reload.matrix.Reload().IgnoreError();
      if (reload.shadow != nullptr) reload.shadow->Reload().IgnoreError();
      reload.identity.Reload().IgnoreError();
      if (reload.tls != nullptr) reload.tls->Reload().IgnoreError();
      continue;
    }
    spdlog::info("{}: draining (up to {})", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                 absl::FormatDuration(options.drain_timeout));
    return;
  }
}

// Serve runs the server until SIGTERM or SIGINT, then drains it.
std::optional<Failure> Serve(const ServerOptions& options) {
  absl::StatusOr<std::shared_ptr<const engine::Matrix>> matrix = LoadMatrix(options.matrix);
  if (!matrix.ok()) return Failure{1, std::string(matrix.status().message())};
  std::shared_ptr<const engine::Matrix> candidate;
  if (!options.shadow_matrix.empty()) {
    absl::StatusOr<std::shared_ptr<const engine::Matrix>> loaded =
        LoadMatrix(options.shadow_matrix, "shadow matrix");
    if (!loaded.ok()) return Failure{1, std::string(loaded.status().message())};
    candidate = *std::move(loaded);
  }
  std::unique_ptr<store::RequestCapture> capture;
  if (!options.capture_requests.empty()) {
    absl::StatusOr<std::unique_ptr<store::RequestCapture>> opened =
        store::RequestCapture::Open(options.capture_requests, options.capture_max_bytes);
    if (!opened.ok()) return Failure{1, std::string(opened.status().message())};
    capture = *std::move(opened);
  }
  for (const ListenAddress& a : options.listen) {
    if (absl::Status probe = ProbeListenAddress(a); !probe.ok()) {
      return Failure{1, std::string(probe.message())};
    }
  }
  absl::StatusOr<std::unique_ptr<Identity>> identity = Identity::Create(options.access);
  if (!identity.ok()) return Failure{1, std::string(identity.status().message())};
  // The operator console: --console-dir, or the one this build made (none if it made none).
  std::shared_ptr<const ConsoleFiles> console;
  if (options.http_listen.has_value()) {
    const bool given = options.console_dir.has_value();
    const std::string dir = given ? *options.console_dir : AGATE_CONSOLE_DIR;
    absl::StatusOr<std::shared_ptr<const ConsoleFiles>> loaded = ConsoleFiles::Load(dir);
    if (loaded.ok()) {
      console = *std::move(loaded);
    } else if (given) {
      return Failure{1, std::string(loaded.status().message())};
    } else {
      spdlog::info("no operator console at / ({})", std::string(loaded.status().message()));
    }
  }
  if ((*identity)->development()) {
    spdlog::warn(
        "development mode (--auth none): callers are not verified and approvers are whoever they "
        "claim to be; only loopback and Unix-socket listeners are allowed. Turn identity on with "
        "--access FILE (docs/security.md)");
  } else {
    spdlog::info("access policy {}: {}", options.access, (*identity)->Summary());
  }
  std::unique_ptr<TlsFiles> tls;
  if (!options.tls_cert.empty()) {
    absl::StatusOr<std::unique_ptr<TlsFiles>> created = TlsFiles::Create(
        {.cert = options.tls_cert, .key = options.tls_key, .client_ca = options.client_ca});
    if (!created.ok()) return Failure{1, std::string(created.status().message())};
    tls = *std::move(created);
  }
  absl::StatusOr<Storage> storage = OpenStorage(options);
  if (!storage.ok()) return Failure{1, std::string(storage.status().message())};
  absl::StatusOr<std::unique_ptr<service::Service>> created =
      CreateService(options, *std::move(matrix), *storage);
  if (!created.ok()) return Failure{1, std::string(created.status().message())};
  service::Service& service = **created;
  std::unique_ptr<MatrixReloader> shadow_reloader;
  if (candidate != nullptr) {
    service.EnableShadow(candidate);
    shadow_reloader = std::make_unique<MatrixReloader>(options.shadow_matrix,
                                                       MatrixReloader::ShadowMatrix(service));
    spdlog::info(
        "shadow mode: every request is also decided by {} (version {}); "
        "`agate shadow --server` reports what it would change",
        options.shadow_matrix, candidate->version());
  }
  if (capture != nullptr) {
    spdlog::info("capturing requests to {} (at most {} bytes, then the capture stops)",
                 capture->path(), options.capture_max_bytes);
    service.EnableCapture(std::move(capture));
  }

  Api api(service, **identity,
          {.max_in_flight = options.max_in_flight,
           .watchers = {.max_watchers = options.max_watchers,
                        .max_per_principal = options.max_watchers_per_principal}});
  GrpcService grpc_service(api);
  MatrixReloader reloader(options.matrix, service);
  std::unique_ptr<WebhookPoster> webhook;
  if (!options.webhook.empty()) {
    absl::StatusOr<std::unique_ptr<WebhookPoster>> w =
        WebhookPoster::Start(service.cases(), options.webhook, {}, &service.counters());
    if (!w.ok()) return Failure{2, std::string(w.status().message())};
    webhook = *std::move(w);
    spdlog::info("posting case events to {}", options.webhook);
  }
  absl::StatusOr<Grpc> grpc = StartGrpc(options, grpc_service, tls.get());
  if (!grpc.ok()) {
    return Failure{grpc.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1,
                   std::string(grpc.status().message())};
  }
  grpc::Server* server = grpc->server.get();
  // --http-listen: the HTTP/JSON API, its module loaded only now (server/http_server.h).
  std::unique_ptr<HttpApi> http_api;
  std::unique_ptr<HttpServer> http;
  if (options.http_listen.has_value()) {
    http_api = std::make_unique<HttpApi>(
        api, HttpApiOptions{.max_request_bytes = options.max_request_bytes,
                            .max_streams = std::max<int64_t>(1, options.http_threads / 2),
                            .console = console});
    absl::StatusOr<std::unique_ptr<HttpServer>> started =
        HttpServer::Start(*http_api, {.address = *options.http_listen,
                                      .tls_cert = options.tls_cert,
                                      .tls_key = options.tls_key,
                                      .threads = static_cast<int>(options.http_threads),
                                      .max_body_bytes = options.max_request_bytes});
    if (!started.ok()) {
      server->Shutdown();
      return Failure{1, std::string(started.status().message())};
    }
    http = *std::move(started);
    spdlog::info("serving HTTP on {}{}", options.http_listen->ToString(http->port()),
                 tls != nullptr ? " (TLS)" : "");
    if (console != nullptr) spdlog::info("the operator console is at / (from {})", console->dir());
  }
  // Start-up (YAML, compiling the matrix, recovery) freed what it allocated; give the pages back
  // before idling (docs/perf.md).
  malloc_trim(0);
  // --watch: the matrix on its own thread (MatrixReloader), the policy and TLS files on another.
  absl::Notification stop_watching;
  std::thread watcher;
  if (options.watch) {
    reloader.Start(options.watch_interval);
    if (shadow_reloader != nullptr) shadow_reloader->Start(options.watch_interval);
    watcher = std::thread([&] {
      while (!stop_watching.WaitForNotificationWithTimeout(options.watch_interval)) {
        (*identity)->Poll();
        if (tls != nullptr) tls->Poll();
      }
    });
    spdlog::info("watching {} for changes every {}", options.matrix,
                 absl::FormatDuration(options.watch_interval));
  }
  Maintenance maintenance(
      service, RealClock(),
      options.store == StoreKind::kPostgres
          // Replicas exchange their count() windows every second (docs/scale.md).
          ? MaintenanceOptions{.snapshot_interval = absl::Seconds(1),
                               .refresh_interval = options.postgres_poll}
          : MaintenanceOptions{});
  maintenance.Start();
  if (http_api != nullptr) http_api->SetReady(true);

  AwaitTermination(options, {reloader, shadow_reloader.get(), **identity, tls.get()});

  reloader.Stop();
  if (shadow_reloader != nullptr) shadow_reloader->Stop();
  stop_watching.Notify();
  if (watcher.joinable()) watcher.join();
  if (http_api != nullptr) http_api->SetReady(false);
  if (http != nullptr) http->Stop();  // ends the watch streams, waits for the requests in flight
  grpc->acceptors.clear();            // no new connections
  server->GetHealthCheckService()->Shutdown();
  server->Shutdown(std::chrono::system_clock::now() +
                   absl::ToChronoMilliseconds(options.drain_timeout));
  maintenance.Stop();
  webhook.reset();
  maintenance.Finish();
  for (const ListenAddress& a : options.listen) {
    if (a.is_unix) unlink(a.path.c_str());
  }
  spdlog::info("stopped; {} cases open", service.cases().open_cases());
  return std::nullopt;
}

}  // namespace
}  // namespace agate::server

int main(int argc, char** argv) {
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<agate::server::ServerOptions> options = agate::server::ParseServerOptions(args);
  if (!options.ok()) {
    std::cerr << "agate-server: " << options.status().message() << "\n"
              << "run agate-server --help for usage\n";
    return 2;
  }
  if (options->help) {
    std::cout << agate::server::ServerUsage();
    return 0;
  }
  if (options->version) {
    std::cout << agate::server::kVersion << "\n";
    return 0;
  }
  agate::server::SetUpLogging(options->log_level, options->log_format);
  agate::server::RouteProtobufLogs();
  if (std::optional<agate::server::Failure> failure = agate::server::Serve(*options)) {
    std::cerr << "agate-server: " << failure->message << "\n";
    return failure->exit_code;
  }
  return 0;
}
