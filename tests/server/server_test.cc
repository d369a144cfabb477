// The server's pieces without the binary: options, listen addresses, logging, status mapping,
// the webhook poster against a local HTTP endpoint.
#include <httplib.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "cases/case_store.h"
#include "common/command_line.h"
#include "engine/decision_codec.h"
#include "engine/evaluator.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "server/grpc_service.h"
#include "server/http_api.h"
#include "server/logging.h"
#include "server/options.h"
#include "server/status.h"
#include "server/webhook.h"
#include "service/service.h"
#include "tests/testing/fixtures.h"

namespace agate::server {
namespace {

using ::testing::HasSubstr;

// Flags after "--matrix m.yaml" that must be refused with a message containing `message`.
struct BadFlags {
  std::vector<std::string> args;
  std::string message;
};

template <size_t N>
void ExpectRefused(const BadFlags (&cases)[N]) {
  for (const BadFlags& c : cases) {
    std::vector<std::string> args = {"--matrix", "m.yaml"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    absl::StatusOr<ServerOptions> bad = ParseServerOptions(args);
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(std::string(bad.status().message()), HasSubstr(c.message));
  }
}

TEST(OptionsTest, ParsesEveryFlag) {
  absl::StatusOr<ServerOptions> o = ParseServerOptions(
      {"--matrix", "m.yaml", "--listen", "127.0.0.1:0", "--listen=unix:/tmp/a.sock", "--log-level",
       "debug", "--log-format=json", "--max-request-bytes", "4096", "--drain-timeout", "2s",
       "--webhook", "http://127.0.0.1:9/x", "--watch", "--watch-interval", "250ms",
       "--max-in-flight", "8"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->matrix, "m.yaml");
  ASSERT_EQ(o->listen.size(), 2u);
  EXPECT_EQ(o->listen[0].grpc_uri(), "127.0.0.1:0");
  EXPECT_EQ(o->listen[1].grpc_uri(), "unix:/tmp/a.sock");
  EXPECT_EQ(o->log_format, LogFormat::kJson);
  EXPECT_EQ(o->max_request_bytes, 4096);
  EXPECT_EQ(o->drain_timeout, absl::Seconds(2));
  EXPECT_TRUE(o->watch);
  EXPECT_EQ(o->watch_interval, absl::Milliseconds(250));
  EXPECT_EQ(o->max_in_flight, 8);
  absl::StatusOr<ServerOptions> defaults = ParseServerOptions({"--matrix", "m.yaml"});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->listen[0].ToString(7878), "127.0.0.1:7878");
  EXPECT_FALSE(defaults->watch);
  EXPECT_EQ(defaults->watch_interval, absl::Seconds(1));
  EXPECT_EQ(defaults->max_in_flight, 256);
  absl::StatusOr<ServerOptions> unbounded =
      ParseServerOptions({"--matrix", "m.yaml", "--max-in-flight", "0"});
  ASSERT_TRUE(unbounded.ok());
  EXPECT_EQ(unbounded->max_in_flight, 0);
}

TEST(OptionsTest, EveryErrorNamesTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  } cases[] = {
      {{}, "--matrix FILE is required"},
      {{"--matrix"}, "--matrix needs a value"},
      {{"--matrix", "m", "--lisen", "x"}, "unknown flag --lisen; flags are --matrix, --listen"},
      {{"--matrix", "m", "--listen", "nohost"}, "--listen nohost: expected host:port"},
      {{"--matrix", "m", "--listen", "h:99999"}, "the port must be a number in [0, 65535]"},
      {{"--matrix", "m", "--listen", "::1:80"}, "write IPv6 addresses in brackets"},
      {{"--matrix", "m", "--listen", "unix:"}, "expected unix:PATH"},
      {{"--matrix", "m", "--max-request-bytes", "-5"},
       "--max-request-bytes: expected a non-negative"},
      {{"--matrix", "m", "--max-request-bytes", "10"}, "--max-request-bytes: must be in"},
      {{"--matrix", "m", "--drain-timeout", "soon"}, "--drain-timeout: "},
      {{"--matrix", "m", "--help=yes"}, "--help takes no value"},
      {{"--matrix", "m", "--watch=yes"}, "--watch takes no value"},
      {{"--matrix", "m", "--watch", "--watch-interval", "soon"}, "--watch-interval: "},
      {{"--matrix", "m", "--watch", "--watch-interval", "1ms"},
       "--watch-interval: must be in [10ms, 1h]"},
      {{"--matrix", "m", "--watch-interval", "2s"},
       "--watch-interval: only means something with --watch"},
      {{"--matrix", "m", "--max-in-flight", "-1"}, "--max-in-flight: expected a non-negative"},
      {{"--matrix", "m", "--max-in-flight", "2000000"},
       "--max-in-flight: must be in [0, 1000000] (0: no bound)"},
      {{"--matrix", "m", "extra"}, "unexpected argument 'extra'"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<ServerOptions> o = ParseServerOptions(c.args);
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(std::string(o.status().message()), HasSubstr(c.message));
  }
}

TEST(OptionsTest, ParsesTheDurabilityFlags) {
  absl::StatusOr<ServerOptions> o =
      ParseServerOptions({"--matrix", "m.yaml", "--store", "sqlite", "--data-dir", "/var/lib/agate",
                          "--fsync", "--idempotency-window", "30m", "--idempotency-entries", "5000",
                          "--max-store-bytes", "1048576", "--decision-log-rotate-bytes", "8192",
                          "--decision-log-max-files", "7", "--max-closed-case-bytes", "65536"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->store, StoreKind::kSqlite);
  EXPECT_EQ(o->data_dir, "/var/lib/agate");
  EXPECT_TRUE(o->fsync);
  EXPECT_EQ(o->idempotency_window, absl::Minutes(30));
  EXPECT_EQ(o->idempotency_entries, 5000);
  EXPECT_EQ(o->max_store_bytes, 1048576u);
  EXPECT_EQ(o->decision_log_rotate_bytes, 8192u);
  EXPECT_EQ(o->decision_log_max_files, 7u);
  EXPECT_EQ(o->max_closed_case_bytes, 65536u);
  absl::StatusOr<ServerOptions> defaults = ParseServerOptions({"--matrix", "m.yaml"});
  EXPECT_EQ(defaults->store, StoreKind::kSqlite);
  EXPECT_EQ(defaults->data_dir, "agate-data");
  EXPECT_FALSE(defaults->fsync);
  EXPECT_EQ(defaults->idempotency_window, absl::Minutes(10));
  EXPECT_EQ(defaults->idempotency_entries, 200000);
  EXPECT_EQ(defaults->decision_log_max_files, 0u);
  EXPECT_EQ(defaults->max_closed_case_bytes, uint64_t{16} << 20);

  const BadFlags cases[] = {
      {{"--store", "disk"}, "--store: must be sqlite, memory or postgres, got 'disk'"},
      {{"--data-dir", ""}, "--data-dir: empty path"},
      {{"--fsync=yes"}, "--fsync takes no value"},
      {{"--idempotency-window", "0s"}, "--idempotency-window: duration '0s' must be positive"},
      {{"--idempotency-window", "8d"}, "--idempotency-window: must be in [1s, 7d]"},
      {{"--idempotency-window", "later"}, "--idempotency-window: "},
      {{"--idempotency-entries", "10"}, "--idempotency-entries: must be in [1000, 100000000]"},
      {{"--max-store-bytes", "-1"}, "--max-store-bytes: "},
      {{"--decision-log-rotate-bytes", "100"}, "--decision-log-rotate-bytes: must be >= 4096"},
      {{"--decision-log-max-files", "-2"}, "--decision-log-max-files: "},
      {{"--max-closed-case-bytes", "-1"},
       "--max-closed-case-bytes: expected a non-negative integer, got '-1'"},
      {{"--max-closed-case-bytes", "lots"}, "--max-closed-case-bytes: "},
      {{"--store", "postgres"}, "--postgres-url: required with --store postgres"},
      {{"--postgres-url", "postgresql://db/agate"}, "--postgres-url: only with --store postgres"},
      {{"--store", "postgres", "--postgres-url", "postgresql://db/agate", "--postgres-poll", "0s"},
       "--postgres-poll: "},
      {{"--store", "postgres", "--postgres-url", "postgresql://db/agate", "--postgres-poll", "1m"},
       "--postgres-poll: must be in [1ms, 10s]"},
      {{"--store", "postgres", "--postgres-url", "postgresql://db/agate", "--replica-id",
        std::string(300, 'r')},
       "--replica-id: longer than 256 bytes"},
  };
  ExpectRefused(cases);
}

TEST(OptionsTest, ParsesThePostgresFlags) {
  absl::StatusOr<ServerOptions> o = ParseServerOptions(
      {"--matrix", "m.yaml", "--store", "postgres", "--postgres-url", "postgresql://agate@db/agate",
       "--postgres-poll", "20ms", "--replica-id", "east-1"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->store, StoreKind::kPostgres);
  EXPECT_EQ(o->postgres_url, "postgresql://agate@db/agate");
  EXPECT_EQ(o->postgres_poll, absl::Milliseconds(20));
  EXPECT_EQ(o->replica_id, "east-1");
  absl::StatusOr<ServerOptions> defaults = ParseServerOptions(
      {"--matrix", "m.yaml", "--store", "postgres", "--postgres-url", "host=/tmp dbname=agate"});
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->postgres_poll, absl::Milliseconds(50));
  EXPECT_EQ(defaults->replica_id, "");
}

TEST(OptionsTest, ParsesTheResourceBoundFlags) {
  absl::StatusOr<ServerOptions> o = ParseServerOptions({"--matrix",
                                                        "m.yaml",
                                                        "--max-open-cases",
                                                        "50",
                                                        "--max-open-cases-per-tenant",
                                                        "0",
                                                        "--max-open-case-bytes",
                                                        "4096",
                                                        "--max-evidence-entry-bytes",
                                                        "0",
                                                        "--max-evidence-case-bytes",
                                                        "2048",
                                                        "--max-watchers",
                                                        "7",
                                                        "--max-watchers-per-principal",
                                                        "3",
                                                        "--max-connection-idle",
                                                        "off",
                                                        "--max-connection-age",
                                                        "1h"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->max_open_cases, 50u);
  EXPECT_EQ(o->max_open_cases_per_tenant, 0u);
  EXPECT_EQ(o->max_open_case_bytes, 4096u);
  EXPECT_EQ(o->max_evidence_entry_bytes, 0u);
  EXPECT_EQ(o->max_evidence_case_bytes, 2048u);
  EXPECT_EQ(o->max_watchers, 7);
  EXPECT_EQ(o->max_watchers_per_principal, 3);
  EXPECT_EQ(o->max_connection_idle, absl::InfiniteDuration());
  EXPECT_EQ(o->max_connection_age, absl::Hours(1));
  absl::StatusOr<ServerOptions> defaults = ParseServerOptions({"--matrix", "m.yaml"});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->max_open_cases_per_tenant, 100'000u);
  EXPECT_EQ(defaults->max_open_case_bytes, uint64_t{512} << 20);
  EXPECT_EQ(defaults->max_evidence_entry_bytes, uint64_t{16} << 10);
  EXPECT_EQ(defaults->max_evidence_case_bytes, uint64_t{256} << 10);
  EXPECT_EQ(defaults->max_watchers, 1000);
  EXPECT_EQ(defaults->max_connection_idle, absl::Minutes(10));

  const BadFlags cases[] = {
      {{"--max-open-cases", "0"}, "--max-open-cases: must be >= 1"},
      {{"--max-open-case-bytes", "0"}, "--max-open-case-bytes: must be >= 1"},
      {{"--max-open-cases-per-tenant", "-1"}, "--max-open-cases-per-tenant: "},
      {{"--max-evidence-entry-bytes", "many"}, "--max-evidence-entry-bytes: "},
      {{"--max-watchers", "0"}, "--max-watchers: must be in [1, 1000000]"},
      {{"--max-watchers-per-principal", "2000000"},
       "--max-watchers-per-principal: must be in [1, 1000000]"},
      {{"--max-connection-idle", "soon"}, "--max-connection-idle: "},
  };
  ExpectRefused(cases);
}

TEST(OptionsTest, ParsesTheHttpListenerFlags) {
  absl::StatusOr<ServerOptions> defaults = ParseServerOptions({"--matrix", "m.yaml"});
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_FALSE(defaults->http_listen.has_value());  // off unless asked for
  EXPECT_EQ(defaults->http_threads, 16);
  absl::StatusOr<ServerOptions> o = ParseServerOptions(
      {"--matrix", "m.yaml", "--http-listen", "127.0.0.1:0", "--http-threads", "4"});
  ASSERT_TRUE(o.ok()) << o.status();
  ASSERT_TRUE(o->http_listen.has_value());
  EXPECT_EQ(o->http_listen->host, "127.0.0.1");
  EXPECT_EQ(o->http_listen->port, 0);
  EXPECT_EQ(o->http_threads, 4);

  const BadFlags cases[] = {
      {{"--http-listen", "127.0.0.1"}, "--http-listen 127.0.0.1: "},
      {{"--http-listen", "127.0.0.1:http"}, "--http-listen 127.0.0.1:http: "},
      {{"--http-listen", "unix:/tmp/a.sock"},
       "--http-listen: a TCP address (host:port), not unix:"},
      {{"--http-listen", "0.0.0.0:8080"},
       "--http-listen 0.0.0.0:8080: plaintext on a non-loopback address"},
      {{"--listen", "unix:/tmp/a.sock", "--http-listen", "127.0.0.1:0", "--access", "a.yaml"},
       "--http-listen 127.0.0.1:0: with --access every TCP listener uses TLS"},
      {{"--http-listen", "127.0.0.1:0", "--http-threads", "1"},
       "--http-threads: must be in [2, 1024]"},
      {{"--http-threads", "4"}, "--http-threads: only means something with --http-listen"},
  };
  ExpectRefused(cases);
}

TEST(OptionsTest, UsageListsTheReloadAndOverloadFlags) {
  EXPECT_THAT(ServerUsage(), HasSubstr("--watch "));
  EXPECT_THAT(ServerUsage(), HasSubstr("--watch-interval D"));
  EXPECT_THAT(ServerUsage(), HasSubstr("--max-in-flight N"));
}

TEST(AdmitTest, ShedsPastTheBoundAndRefusesExpiredCalls) {
  const auto now = std::chrono::system_clock::now();
  const auto later = now + std::chrono::seconds(1);
  EXPECT_TRUE(Admit(0, 4, later, now).ok());
  EXPECT_TRUE(Admit(3, 4, later, now).ok()) << "the 4th call in flight is admitted";
  const absl::Status shed = Admit(4, 4, later, now);
  EXPECT_EQ(shed.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(shed.message(), "server overloaded: 4 calls in flight (--max-in-flight 4)");
  EXPECT_TRUE(Admit(100000, 0, later, now).ok()) << "0: no bound";
  EXPECT_TRUE(Admit(0, 4, std::chrono::system_clock::time_point::max(), now).ok()) << "no deadline";
  const absl::Status expired = Admit(0, 4, now, now);
  EXPECT_EQ(expired.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(expired.message()), HasSubstr("deadline passed"));
  EXPECT_EQ(Admit(9, 4, now - std::chrono::seconds(1), now).code(),
            absl::StatusCode::kResourceExhausted)
      << "overload is reported first";
}

TEST(OptionsTest, ParsesIpv6AndUnixAddresses) {
  absl::StatusOr<ListenAddress> v6 = ParseListenAddress("[::1]:8080");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->grpc_uri(), "[::1]:8080");
  absl::StatusOr<ListenAddress> unix = ParseListenAddress("unix:rel/a.sock");
  ASSERT_TRUE(unix.ok());
  EXPECT_TRUE(unix->is_unix);
  EXPECT_EQ(unix->path, "rel/a.sock");
}

TEST(LoggingTest, RejectsUnknownLevelsAndFormats) {
  EXPECT_THAT(std::string(ParseLogLevel("loud").status().message()), HasSubstr("--log-level"));
  EXPECT_THAT(std::string(ParseLogFormat("xml").status().message()), HasSubstr("--log-format"));
  EXPECT_EQ(*ParseLogLevel("off"), LogLevel::kOff);
  EXPECT_EQ(*ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_THAT(
      std::string(
          ParseServerOptions({"--matrix", "m.yaml", "--log-level", "loud"}).status().message()),
      HasSubstr("--log-level"));
}

TEST(StatusTest, MapsCodesAndMessages) {
  for (absl::StatusCode code :
       {absl::StatusCode::kInvalidArgument, absl::StatusCode::kNotFound,
        absl::StatusCode::kPermissionDenied, absl::StatusCode::kFailedPrecondition,
        absl::StatusCode::kResourceExhausted, absl::StatusCode::kUnavailable}) {
    const absl::Status s(code, "field: message");
    const grpc::Status g = ToGrpcStatus(s);
    EXPECT_EQ(static_cast<int>(g.error_code()), static_cast<int>(code));
    EXPECT_EQ(g.error_message(), "field: message");
  }
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

TEST(WebhookTest, RejectsBadUrls) {
  for (const char* url : {"ftp://x", "http://", "x", "http://a b/"}) {
    EXPECT_THAT(std::string(ParseWebhookUrl(url).status().message()), HasSubstr("--webhook"))
        << url;
  }
  absl::StatusOr<ParsedUrl> ok = ParseWebhookUrl("http://127.0.0.1:9000/hooks/agate?x=1");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->scheme_host_port, "http://127.0.0.1:9000");
  EXPECT_EQ(ok->path, "/hooks/agate?x=1");
}

// A local HTTP endpoint that records bodies and fails the first `fail_first` posts.
class Endpoint {
 public:
  explicit Endpoint(int fail_first) : fail_first_(fail_first) {
    server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      if (attempts_++ < fail_first_) {
        res.status = 503;
        return;
      }
      bodies_.push_back(req.body);
      res.status = 204;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~Endpoint() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  std::vector<std::string> bodies() {
    std::lock_guard<std::mutex> lock(mu_);
    return bodies_;
  }
  int attempts() {
    std::lock_guard<std::mutex> lock(mu_);
    return attempts_;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  int fail_first_;
  std::mutex mu_;
  int attempts_ = 0;
  std::vector<std::string> bodies_;
  std::thread thread_;
};

// Opens one HOLD case in store.
void OpenCase(cases::CaseStore& store, const Clock& clock) {
  absl::StatusOr<std::shared_ptr<const engine::Matrix>> m =
      engine::LoadMatrixFile(AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml", nullptr);
  ASSERT_TRUE(m.ok());
  v1::EvaluateRequest r;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      "request_id: 'r1' tenant_id: 't1' action { type: 'refund' amount: 400 }", &r));
  engine::Decision d = engine::Evaluate(*m, r, clock.Now());
  ASSERT_TRUE(store.Apply(r, &d).ok());
}

template <typename F>
bool Eventually(F condition) {
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

TEST(WebhookTest, PostsEachTransitionAsJsonRetryingFailures) {
  Endpoint endpoint(/*fail_first=*/2);
  FakeClock clock;
  std::unique_ptr<cases::CaseStore> owned = *cases::CaseStore::Create(clock);
  cases::CaseStore& store = *owned;
  absl::StatusOr<std::unique_ptr<WebhookPoster>> hook = WebhookPoster::Start(
      store, endpoint.url(), {.attempts = 4, .first_backoff = absl::Milliseconds(10)});
  ASSERT_TRUE(hook.ok()) << hook.status();
  OpenCase(store, clock);
  ASSERT_TRUE(Eventually([&] { return (*hook)->delivered() == 1; }));
  EXPECT_EQ(endpoint.attempts(), 3);
  ASSERT_EQ(endpoint.bodies().size(), 1u);
  EXPECT_THAT(endpoint.bodies()[0], HasSubstr("\"event\":\"opened\""));
  EXPECT_THAT(endpoint.bodies()[0], HasSubstr("\"lane\":\"financial\""));
  EXPECT_EQ((*hook)->failed(), 0u);
}

TEST(WebhookTest, GivesUpAfterTheLastAttemptAndKeepsGoing) {
  Endpoint endpoint(/*fail_first=*/1000);
  FakeClock clock;
  std::unique_ptr<cases::CaseStore> owned = *cases::CaseStore::Create(clock);
  cases::CaseStore& store = *owned;
  absl::StatusOr<std::unique_ptr<WebhookPoster>> hook = WebhookPoster::Start(
      store, endpoint.url(), {.attempts = 2, .first_backoff = absl::Milliseconds(5)});
  ASSERT_TRUE(hook.ok());
  OpenCase(store, clock);
  ASSERT_TRUE(Eventually([&] { return (*hook)->failed() == 1; }));
  EXPECT_EQ(endpoint.attempts(), 2);
  EXPECT_EQ((*hook)->delivered(), 0u);
  hook->reset();  // stops promptly
  EXPECT_EQ(store.watchers(), 0u);
}

TEST(CommandLineTest, KeepsRepeatedValuesAndPositionals) {
  absl::StatusOr<CommandLine> cl =
      CommandLine::Parse({"a.yaml", "--x", "1", "--x=2", "--flag", "--", "--not-a-flag"},
                         {.values = {"x"}, .booleans = {"flag"}});
  ASSERT_TRUE(cl.ok());
  EXPECT_EQ(cl->All("x"), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(cl->Value("x"), "2");
  EXPECT_TRUE(cl->Has("flag"));
  EXPECT_EQ(cl->positional(), (std::vector<std::string>{"a.yaml", "--not-a-flag"}));
  EXPECT_EQ(*cl->Int("missing", 7), 7);
  EXPECT_EQ(cl->Int("x", 0).value(), 2);
}

TEST(HttpStatusTest, MapsEveryCodeAsGoogleApiHttpRuleDoes) {
  const std::pair<absl::StatusCode, int> cases[] = {
      {absl::StatusCode::kOk, 200},
      {absl::StatusCode::kInvalidArgument, 400},
      {absl::StatusCode::kFailedPrecondition, 400},
      {absl::StatusCode::kOutOfRange, 400},
      {absl::StatusCode::kUnauthenticated, 401},
      {absl::StatusCode::kPermissionDenied, 403},
      {absl::StatusCode::kNotFound, 404},
      {absl::StatusCode::kAlreadyExists, 409},
      {absl::StatusCode::kAborted, 409},
      {absl::StatusCode::kResourceExhausted, 429},
      {absl::StatusCode::kCancelled, 499},
      {absl::StatusCode::kUnimplemented, 501},
      {absl::StatusCode::kUnavailable, 503},
      {absl::StatusCode::kDeadlineExceeded, 504},
      {absl::StatusCode::kInternal, 500},
      {absl::StatusCode::kUnknown, 500},
      {absl::StatusCode::kDataLoss, 500},
  };
  for (const auto& [code, http] : cases) {
    EXPECT_EQ(HttpStatusOf(code), http) << absl::StatusCodeToString(code);
  }
}

TEST(HttpApiTest, ReadyzIsUnavailableUntilTheServerIsReadyAndWhileItDrains) {
  std::unique_ptr<service::Service> service = *service::Service::Create(testing::BundledMatrix());
  std::unique_ptr<Identity> identity = *Identity::Create("");
  Api api(*service, *identity);
  HttpApi http(api, {});
  const HttpRequest ready{.method = "GET", .path = "/readyz"};
  EXPECT_EQ(http.Handle(ready).status, 503) << "starting";
  EXPECT_EQ(http.Handle(ready).body, "not ready\n");
  http.SetReady(true);
  EXPECT_EQ(http.Handle(ready).status, 200);
  EXPECT_EQ(http.Handle({.method = "HEAD", .path = "/readyz"}).status, 200) << "HEAD is GET";
  http.SetReady(false);
  EXPECT_EQ(http.Handle(ready).status, 503) << "draining";
  EXPECT_EQ(http.Handle({.method = "GET", .path = "/healthz"}).status, 200);
  // Stopping: no new watch stream.
  http.Stop();
  const HttpAnswer watch = http.Handle({.method = "GET", .path = "/v1/cases:watch"});
  EXPECT_EQ(watch.status, 503);
  EXPECT_EQ(watch.stream, nullptr);
  EXPECT_EQ(http.streams(), 0);
}

TEST(PrometheusTest, WritesOneHelpAndTypePerFamilyAndEscapes) {
  using service::MetricSample;
  using service::MetricType;
  const std::vector<MetricSample> samples = {
      {"agate_a_total", "A \\ count\nof things", MetricType::kCounter, {{"lane", "x\"y\\z\n"}}, 3},
      {"agate_g", "G", MetricType::kGauge, {}, 0.5},
      {"agate_a_total", "A \\ count\nof things", MetricType::kCounter, {{"lane", "b"}}, 1e15},
      {"agate_h_bucket", "H", MetricType::kHistogram, {{"le", "+Inf"}}, 2, "agate_h"},
      {"agate_h_count", "H", MetricType::kHistogram, {}, 2, "agate_h"},
  };
  EXPECT_EQ(RenderPrometheus(samples),
            "# HELP agate_a_total A \\\\ count\\nof things\n"
            "# TYPE agate_a_total counter\n"
            "agate_a_total{lane=\"x\\\"y\\\\z\\n\"} 3\n"
            "agate_a_total{lane=\"b\"} 1000000000000000\n"
            "# HELP agate_g G\n"
            "# TYPE agate_g gauge\n"
            "agate_g 0.5\n"
            "# HELP agate_h H\n"
            "# TYPE agate_h histogram\n"
            "agate_h_bucket{le=\"+Inf\"} 2\n"
            "agate_h_count 2\n");
}

}  // namespace
}  // namespace agate::server
