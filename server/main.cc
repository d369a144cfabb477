// agate-server: serves an escalation matrix over gRPC. See `agate-server --help`.
#include <arpa/inet.h>
#include <malloc.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "engine/idempotency.h"
#include "engine/matrix.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/approver.h"
#include "server/grpc_service.h"
#include "server/logging.h"
#include "server/matrix_reloader.h"
#include "server/options.h"
#include "server/service.h"
#include "server/webhook.h"
#include "spdlog/spdlog.h"
#include "store/decision_log.h"
#include "store/sqlite_store.h"

namespace agate::server {
namespace {

constexpr char kVersion[] = "agate-server 0.1.0";

absl::Status CannotListen(const ListenAddress& a, absl::string_view why) {
  return absl::UnavailableError(absl::StrCat("cannot listen on ", a.ToString(a.port), ": ", why));
}

// ProbeTcp binds the address itself first: gRPC's BuildAndStart only says "failed", and with
// SO_REUSEPORT off a busy port must be a clear error.
absl::Status ProbeTcp(const ListenAddress& a) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(a.port);
  if (int rc = getaddrinfo(a.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return CannotListen(a, gai_strerror(rc));
  }
  absl::Status status = absl::OkStatus();
  for (addrinfo* ai = found; ai != nullptr && status.ok(); ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      status =
          CannotListen(a, errno == EADDRINUSE ? "address already in use" : std::strerror(errno));
    }
    close(fd);
  }
  freeaddrinfo(found);
  return status;
}

// ProbeUnix refuses a socket another server answers on, removes a stale one, and refuses to
// replace anything that is not a socket.
absl::Status ProbeUnix(const ListenAddress& a) {
  struct stat st;
  if (lstat(a.path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return CannotListen(a, std::strerror(errno));
  }
  if (!S_ISSOCK(st.st_mode)) return CannotListen(a, "the path exists and is not a socket");
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return CannotListen(a, std::strerror(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, a.path.c_str(), sizeof(addr.sun_path) - 1);
  const bool answered = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  if (answered) return CannotListen(a, "address already in use (a server answers on it)");
  if (unlink(a.path.c_str()) != 0) return CannotListen(a, std::strerror(errno));
  spdlog::info("removed stale socket {}", a.path);
  return absl::OkStatus();
}

int Run(const ServerOptions& options) {
  if (absl::Status s = SetUpLogging(options.log_level, options.log_format); !s.ok()) {
    std::cerr << "agate-server: " << s.message() << "\n";
    return 2;
  }
  RouteProtobufLogs();
  std::vector<engine::Diagnostic> diagnostics;
  absl::StatusOr<std::shared_ptr<const engine::Matrix>> matrix =
      engine::LoadMatrixFile(options.matrix, &diagnostics);
  for (const engine::Diagnostic& d : diagnostics) {
    if (d.severity == engine::Severity::kError) {
      std::cerr << d.ToString() << "\n";
    } else {
      spdlog::warn("{}", d.ToString());
    }
  }
  if (!matrix.ok()) {
    std::cerr << "agate-server: the matrix " << options.matrix << " is invalid; not starting\n";
    return 1;
  }
  spdlog::info("loaded matrix {} (name {}, version {}): {} lanes, {} triggers", options.matrix,
               (*matrix)->name(), (*matrix)->version(), (*matrix)->lanes().size(),
               (*matrix)->triggers().size());

  for (const ListenAddress& a : options.listen) {
    absl::Status probe = a.is_unix ? ProbeUnix(a) : (a.port == 0 ? absl::OkStatus() : ProbeTcp(a));
    if (!probe.ok()) {
      std::cerr << "agate-server: " << probe.message() << "\n";
      return 1;
    }
  }

  // The durable store and the decision log live in the data dir (see README.md "Durability").
  std::unique_ptr<store::SqliteStore> sqlite;
  std::unique_ptr<store::DecisionLog> decision_log;
  if (options.store == "sqlite") {
    absl::StatusOr<std::unique_ptr<store::SqliteStore>> opened =
        store::SqliteStore::Open({.dir = options.data_dir,
                                  .fsync = options.fsync,
                                  .decision_retention = options.idempotency_window,
                                  .max_decisions = static_cast<size_t>(options.idempotency_entries),
                                  .max_bytes = options.max_store_bytes});
    if (!opened.ok()) {
      std::cerr << "agate-server: " << opened.status().message() << "\n";
      return 1;
    }
    sqlite = *std::move(opened);
    absl::StatusOr<std::unique_ptr<store::DecisionLog>> log =
        store::DecisionLog::Open({.dir = absl::StrCat(options.data_dir, "/decisions"),
                                  .rotate_bytes = options.decision_log_rotate_bytes,
                                  // ALLOW records reach the file within 2 ms (what a kill -9
                                  // can cut off); the writer's turns are one write(2) each, at
                                  // nice 19.
                                  .flush_interval = absl::Milliseconds(2),
                                  .max_files = options.decision_log_max_files,
                                  .fsync = options.fsync});
    if (!log.ok()) {
      std::cerr << "agate-server: decision log: " << log.status().message() << "\n";
      return 1;
    }
    decision_log = *std::move(log);
  }

  ServiceOptions service_options;
  service_options.idempotency.window = options.idempotency_window;
  service_options.idempotency.max_entries = static_cast<size_t>(options.idempotency_entries);
  service_options.cases.max_closed_case_bytes = static_cast<size_t>(options.max_closed_case_bytes);
  service_options.store = sqlite.get();
  service_options.decision_log = decision_log.get();
  // The idempotency cache reserves its memory up front (backed only as it fills): under strict
  // overcommit (vm.overcommit_memory=2) a large --idempotency-entries can fail here, at start-up.
  std::unique_ptr<Service> service_holder;
  try {
    service_holder = std::make_unique<Service>(*matrix, engine::RealClock(), service_options);
  } catch (const std::bad_alloc&) {
    std::cerr << "agate-server: cannot reserve memory for --idempotency-entries "
              << options.idempotency_entries << " ("
              << engine::IdempotencyCache::ReservedBytes(
                     static_cast<size_t>(options.idempotency_entries)) /
                     (1 << 20)
              << " MiB); lower it\n";
    return 1;
  }
  Service& service = *service_holder;
  if (sqlite != nullptr) {
    absl::StatusOr<Recovery> recovered = service.Recover();
    if (!recovered.ok()) {
      std::cerr << "agate-server: cannot recover from " << sqlite->path() << ": "
                << recovered.status().message() << "\n";
      return 1;
    }
    spdlog::info(
        "store {}: recovered {} cases ({} open), {} decisions within the idempotency window, {} "
        "count() keys",
        sqlite->path(), recovered->cases, recovered->open_cases, recovered->decisions,
        recovered->signal_keys);
  } else {
    spdlog::warn("--store memory: cases and decisions are not persisted (lost on restart)");
  }
  MetadataApproverIdentity identity;
  GrpcService grpc_service(service, identity, {.max_in_flight = options.max_in_flight});
  MatrixReloader reloader(options.matrix, service);

  std::unique_ptr<WebhookPoster> webhook;
  if (!options.webhook.empty()) {
    absl::StatusOr<std::unique_ptr<WebhookPoster>> w =
        WebhookPoster::Start(service.cases(), options.webhook);
    if (!w.ok()) {
      std::cerr << "agate-server: " << w.status().message() << "\n";
      return 2;
    }
    webhook = *std::move(w);
    spdlog::info("posting case events to {}", options.webhook);
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (options.max_in_flight > 0) {
    // Per connection, the HTTP/2 stream limit makes a client queue (and time out) its excess
    // calls itself, so that a single connection never has more than the bound inside the
    // server; across connections GrpcService sheds what is past the bound.
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                               static_cast<int>(options.max_in_flight));
  }
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_request_bytes));
  std::vector<int> ports(options.listen.size(), 0);
  for (size_t i = 0; i < options.listen.size(); ++i) {
    builder.AddListeningPort(options.listen[i].grpc_uri(), grpc::InsecureServerCredentials(),
                             &ports[i]);
  }
  builder.RegisterService(&grpc_service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    std::cerr << "agate-server: cannot start the gRPC server on the given addresses\n";
    return 1;
  }
  for (size_t i = 0; i < options.listen.size(); ++i) {
    if (!options.listen[i].is_unix && ports[i] == 0) {
      std::cerr << "agate-server: cannot listen on " << options.listen[i].ToString(0) << "\n";
      server->Shutdown();
      return 1;
    }
    spdlog::info("listening on {}", options.listen[i].ToString(ports[i]));
  }
  if (options.max_in_flight > 0) {
    spdlog::info("at most {} Evaluate calls in flight (--max-in-flight)", options.max_in_flight);
  }
  server->GetHealthCheckService()->SetServingStatus("agate.v1.Agate", true);
  // Start-up (YAML, compiling the matrix, recovery) freed what it allocated, but the freed pages
  // stay in the process until returned: give them back before idling (measured: idle RSS 22.9
  // -> 22.0 MB with the SQLite store).
  malloc_trim(0);
  if (options.watch) {
    reloader.Start(options.watch_interval);
    spdlog::info("watching {} for changes every {}", options.matrix,
                 absl::FormatDuration(options.watch_interval));
  }

  // One timer thread runs every case's SLA timeout (those that passed while the server was down
  // run at once), retries store commits that failed, and snapshots the count() windows.
  absl::Notification stop_timers;
  std::thread timers([&] {
    pthread_setname_np(pthread_self(), "agate-timers");
    absl::Time next_snapshot = absl::Now() + absl::Seconds(5);
    absl::Time next_error_log = absl::InfinitePast();
    while (!stop_timers.HasBeenNotified()) {
      service.cases().RunDueTimers();
      if (service.cases().unsynced() > 0) {
        if (absl::Status s = service.cases().Sync(); !s.ok() && absl::Now() >= next_error_log) {
          spdlog::error("{} cases are not yet durable (retrying every second): {}",
                        service.cases().unsynced(), std::string(s.message()));
          next_error_log = absl::Now() + absl::Seconds(10);
        }
      }
      if (absl::Now() >= next_snapshot) {
        next_snapshot = absl::Now() + absl::Seconds(5);
        if (absl::Status s = service.SaveSignals(); !s.ok()) {
          spdlog::warn("count() windows snapshot: {}", std::string(s.message()));
        }
      }
      absl::Duration wait = absl::Seconds(1);
      if (std::optional<absl::Time> next = service.cases().NextDeadline()) {
        wait = std::clamp(*next - absl::Now(), absl::Milliseconds(1), absl::Seconds(1));
      }
      stop_timers.WaitForNotificationWithTimeout(wait);
    }
  });

  // Signals were blocked in main before any thread started: only this thread sees them.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, s);
  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP: reloading {}", options.matrix);
      reloader.Reload().IgnoreError();  // it logs the outcome; a failure keeps the old matrix
      continue;
    }
    spdlog::info("{}: draining (up to {})", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                 absl::FormatDuration(options.drain_timeout));
    break;
  }
  reloader.Stop();
  server->GetHealthCheckService()->Shutdown();
  server->Shutdown(std::chrono::system_clock::now() +
                   absl::ToChronoMilliseconds(options.drain_timeout));
  stop_timers.Notify();
  timers.join();
  webhook.reset();
  if (absl::Status s = service.SaveSignals(); !s.ok()) {
    spdlog::warn("count() windows snapshot: {}", std::string(s.message()));
  }
  if (service.cases().unsynced() > 0) {
    if (absl::Status s = service.cases().Sync(); !s.ok()) {
      spdlog::error("{} cases could not be made durable before exit: {}",
                    service.cases().unsynced(), std::string(s.message()));
    }
  }
  for (const ListenAddress& a : options.listen) {
    if (a.is_unix) unlink(a.path.c_str());
  }
  spdlog::info("stopped; {} cases open", service.cases().open_cases());
  return 0;
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
  return agate::server::Run(*options);
}
