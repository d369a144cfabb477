// The HTTP/JSON API (--http-listen) through the real agate-server: every endpoint's normal path,
// its errors as JSON with the matching HTTP status, server-sent events with resumption and
// shutdown, /metrics parsed by the Prometheus client library, and JWT authentication over TLS.
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/pki.h"
#include "tests/testing/process.h"

namespace agate {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kMatrix[] = AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml";

// Refund is an EvaluateRequest in JSON that the bundled matrix BLOCKs (a financial case).
std::string Refund(const std::string& id, const std::string& tenant = "acme") {
  return absl::StrCat(R"({"request_id":")", id, R"(","tenant_id":")", tenant,
                      R"(","agent_id":"support-bot","workflow_id":"refunds","item_id":"order-)", id,
                      R"(","action":{"type":"refund","amount":400}})");
}

std::string Lookup(const std::string& id) {
  return absl::StrCat(
      R"({"request_id":")", id,
      R"(","tenant_id":"acme","agent_id":"support-bot","action":{"type":"lookup"}})");
}

// JsonField returns the string value of "name":"..." in json, "" if none (enough for ids).
std::string JsonField(const std::string& json, const std::string& name) {
  const std::string key = absl::StrCat("\"", name, "\":\"");
  const size_t at = json.find(key);
  if (at == std::string::npos) return "";
  const size_t start = at + key.size();
  return json.substr(start, json.find('"', start) - start);
}

std::pair<std::string, int> HostPort(const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(address.substr(colon + 1), &port)) << address;
  return {address.substr(0, colon), port};
}

class HttpE2eTest : public ::testing::Test {
 protected:
  void StartServer(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--matrix",
                                     kMatrix,
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--http-listen",
                                     "127.0.0.1:0",
                                     "--max-request-bytes",
                                     "4096"};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_TRUE(server_.Start(AGATE_SERVER_BIN, args)) << server_.log();
    auto [host, port] = HostPort(server_.http_address());
    client_ = std::make_unique<httplib::Client>(host, port);
    client_->set_read_timeout(10, 0);
  }
  void SetUp() override { StartServer(); }

  httplib::Result Post(const std::string& path, const std::string& body,
                       const httplib::Headers& headers = {}) {
    return client_->Post(path.c_str(), headers, body, "application/json");
  }
  httplib::Result Get(const std::string& path, const httplib::Headers& headers = {}) {
    return client_->Get(path.c_str(), headers);
  }
  // OpenCase escalates a refund and returns its case id.
  std::string OpenCase(const std::string& id) {
    httplib::Result r = Post("/v1/evaluate", Refund(id));
    EXPECT_TRUE(r) << httplib::to_string(r.error());
    if (!r) return "";
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_THAT(r->body, HasSubstr(R"("verdict":"VERDICT_BLOCK")"));
    return JsonField(r->body, "case_id");
  }

  testing::ServerProcess server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(HttpE2eTest, EvaluateAnswersInProto3Json) {
  httplib::Result allow = Post("/v1/evaluate", Lookup("l1"));
  ASSERT_TRUE(allow);
  EXPECT_EQ(allow->status, 200);
  EXPECT_EQ(allow->get_header_value("Content-Type"), "application/json");
  EXPECT_THAT(allow->body, HasSubstr(R"("verdict":"VERDICT_ALLOW")"));
  const std::string case_id = OpenCase("r1");
  EXPECT_FALSE(case_id.empty());
  // The same request_id again is the same decision (idempotency, as over gRPC).
  httplib::Result again = Post("/v1/evaluate", Refund("r1"));
  ASSERT_TRUE(again);
  EXPECT_EQ(JsonField(again->body, "case_id"), case_id);
  EXPECT_THAT(again->body, HasSubstr(R"("replayed":true)"));
  // lowerCamelCase is proto3 JSON too.
  httplib::Result camel = Post(
      "/v1/evaluate",
      R"({"requestId":"c1","tenantId":"acme","agentId":"support-bot","action":{"type":"lookup"}})");
  ASSERT_TRUE(camel);
  EXPECT_EQ(camel->status, 200) << camel->body;
}

TEST_F(HttpE2eTest, CasesAreListedReadAndAcknowledged) {
  const std::string id = OpenCase("r1");
  OpenCase("r2");
  httplib::Result list = Get("/v1/cases?state=OPEN&lane=financial&tenant=acme&page_size=1");
  ASSERT_TRUE(list);
  EXPECT_EQ(list->status, 200) << list->body;
  EXPECT_THAT(list->body, HasSubstr(R"("lane":"financial")"));
  const std::string token = JsonField(list->body, "next_page_token");
  ASSERT_FALSE(token.empty()) << list->body;
  httplib::Result next = Get("/v1/cases?state=OPEN&page_size=1&page_token=" + token);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200) << next->body;

  httplib::Result one = Get("/v1/cases/" + id);
  ASSERT_TRUE(one);
  EXPECT_EQ(one->status, 200) << one->body;
  EXPECT_THAT(one->body, HasSubstr(absl::StrCat(R"("id":")", id, "\"")));
  EXPECT_THAT(one->body, HasSubstr(R"("state":"CASE_STATE_OPEN")"));

  httplib::Result ack = Post(absl::StrCat("/v1/cases/", id, ":acknowledge"),
                             R"({"decision":"DECISION_APPROVE","comment":"ok"})",
                             {{"X-Agate-Approver", "finance-approver"}});
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->status, 200) << ack->body;
  EXPECT_THAT(ack->body, HasSubstr(R"("state":"CASE_STATE_APPROVED")"));
  // Acknowledged: the owner group's decision is final, and logged with who and which case.
  EXPECT_THAT(server_.log(), HasSubstr(absl::StrCat("case ", id)));
}

TEST_F(HttpE2eTest, JsonLogLinesNameThePrincipalAndTheCase) {
  testing::ServerProcess json;
  ASSERT_TRUE(
      json.Start(AGATE_SERVER_BIN, {"--matrix", kMatrix, "--listen", "127.0.0.1:0", "--http-listen",
                                    "127.0.0.1:0", "--log-format", "json", "--log-level", "debug"}))
      << json.log();
  auto [host, port] = HostPort(json.http_address());
  httplib::Client c(host, port);
  httplib::Result opened = c.Post("/v1/evaluate", Refund("r1"), "application/json");
  ASSERT_TRUE(opened);
  const std::string id = JsonField(opened->body, "case_id");
  ASSERT_FALSE(id.empty()) << opened->body;
  httplib::Result ack = c.Post(absl::StrCat("/v1/cases/", id, ":acknowledge"),
                               {{"X-Agate-Approver", "finance-approver"}},
                               R"({"decision":"DECISION_REJECT"})", "application/json");
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->status, 200) << ack->body;
  // The escalation's line (debug) and the acknowledgement's (info).
  EXPECT_THAT(json.log(),
              HasSubstr(absl::StrCat(R"x("principal":"(unverified)","case_id":")x", id, "\"}")));
  EXPECT_THAT(json.log(),
              HasSubstr(absl::StrCat(R"("principal":"finance-approver","case_id":")", id, "\"}")));
}

TEST_F(HttpE2eTest, StatsHealthAndReadiness) {
  OpenCase("r1");
  httplib::Result stats = Get("/v1/stats");
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->status, 200) << stats->body;
  EXPECT_THAT(stats->body, HasSubstr(R"("BLOCK":"1")"));  // uint64 in proto3 JSON is a string
  httplib::Result health = Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");
  httplib::Result ready = Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
}

TEST_F(HttpE2eTest, TheShadowReportIsServedWithACandidateOnly) {
  httplib::Result none = Get("/v1/shadow");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 400) << none->body;
  EXPECT_THAT(none->body, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(none->body, HasSubstr("--shadow-matrix"));

  testing::ServerProcess shadowed;
  ASSERT_TRUE(shadowed.Start(AGATE_SERVER_BIN,
                             {"--matrix", kMatrix, "--listen", "127.0.0.1:0", "--http-listen",
                              "127.0.0.1:0", "--shadow-matrix", kMatrix}))
      << shadowed.log();
  auto [host, port] = HostPort(shadowed.http_address());
  httplib::Client client(host, port);
  client.set_read_timeout(10, 0);
  httplib::Result decided = client.Post("/v1/evaluate", Refund("s1"), "application/json");
  ASSERT_TRUE(decided);
  EXPECT_THAT(decided->body, HasSubstr(R"("verdict":"VERDICT_BLOCK")"));
  httplib::Result report = client.Get("/v1/shadow");
  ASSERT_TRUE(report);
  EXPECT_EQ(report->status, 200) << report->body;
  EXPECT_THAT(report->body, HasSubstr(R"("requests":"1")"));
  EXPECT_THAT(report->body,
              HasSubstr(R"({"live":"VERDICT_BLOCK","shadow":"VERDICT_BLOCK","count":"1")"));
}

TEST_F(HttpE2eTest, ErrorsAreJsonWithTheMatchingHttpStatus) {
  const std::string id = OpenCase("r1");
  struct Case {
    std::string name, method, path, body;
    int status;
    std::string code;
    std::string message;
  };
  const Case cases[] = {
      {"bad JSON", "POST", "/v1/evaluate", R"({"request_id": )", 400, "INVALID_ARGUMENT",
       "not a valid agate.v1.EvaluateRequest in JSON"},
      {"unknown field", "POST", "/v1/evaluate", R"({"request_id":"x","nosuch":1})", 400,
       "INVALID_ARGUMENT", "nosuch"},
      {"wrong type", "POST", "/v1/evaluate", R"({"action":{"amount":"lots"}})", 400,
       "INVALID_ARGUMENT", "amount"},
      {"invalid request", "POST", "/v1/evaluate", R"({"tenant_id":"acme"})", 400,
       "INVALID_ARGUMENT", "request_id"},
      {"unknown case", "GET", "/v1/cases/c-nosuch", "", 404, "NOT_FOUND", "c-nosuch"},
      {"missing id", "POST", "/v1/cases/:acknowledge", R"({"decision":"DECISION_APPROVE"})", 400,
       "INVALID_ARGUMENT", "case_id"},
      {"ids disagree", "POST", absl::StrCat("/v1/cases/", id, ":acknowledge"),
       R"({"case_id":"c-other","decision":"DECISION_APPROVE"})", 400, "INVALID_ARGUMENT",
       "case_id: the body names 'c-other'"},
      {"no decision", "POST", absl::StrCat("/v1/cases/", id, ":acknowledge"), "{}", 400,
       "INVALID_ARGUMENT", "decision"},
      {"wrong method", "GET", "/v1/evaluate", "", 405, "UNIMPLEMENTED", "method GET"},
      {"wrong method on a case", "DELETE", absl::StrCat("/v1/cases/", id), "", 405, "UNIMPLEMENTED",
       "method DELETE"},
      {"unknown path", "GET", "/v2/nothing", "", 404, "NOT_FOUND", "no such path: /v2/nothing"},
      {"unknown verb", "POST", absl::StrCat("/v1/cases/", id, ":escalate"), "", 404, "NOT_FOUND",
       "no such path"},
      {"unknown query parameter", "GET", "/v1/cases?stat=OPEN", "", 400, "INVALID_ARGUMENT",
       "query: unknown parameter 'stat'"},
      {"bad state", "GET", "/v1/cases?state=SHUT", "", 400, "INVALID_ARGUMENT",
       "state: 'SHUT' is not a case state"},
      {"bad page size", "GET", "/v1/cases?page_size=many", "", 400, "INVALID_ARGUMENT",
       "page_size"},
      {"too large", "POST", "/v1/evaluate", std::string(8192, ' '), 413, "RESOURCE_EXHAUSTED",
       "larger than 4096 bytes (--max-request-bytes)"},
      {"bad resume id", "GET", "/v1/cases:watch?after=yesterday", "", 400, "INVALID_ARGUMENT",
       "after: 'yesterday'"},
      {"bad view", "GET", "/v1/cases:watch?view=tiny", "", 400, "INVALID_ARGUMENT",
       "view: 'tiny' is not a view (full or summary)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    httplib::Request request;
    request.method = c.method;
    request.path = c.path;
    request.body = c.body;
    if (!c.body.empty()) request.set_header("Content-Type", "application/json");
    httplib::Result r = client_->send(request);
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    EXPECT_EQ(r->status, c.status) << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
    EXPECT_THAT(r->body, HasSubstr(absl::StrCat(R"("status":")", c.code, "\"")));
    EXPECT_THAT(r->body, HasSubstr(c.message));
    if (c.status == 405) {
      EXPECT_FALSE(r->get_header_value("Allow").empty());
    }
  }
  // Nothing changed: the one case is still open.
  httplib::Result one = Get("/v1/cases/" + id);
  ASSERT_TRUE(one);
  EXPECT_THAT(one->body, HasSubstr(R"("state":"CASE_STATE_OPEN")"));
}

// SseReader reads a /v1/cases:watch stream on its own thread.
class SseReader {
 public:
  SseReader(const std::string& address, const httplib::Headers& headers,
            const std::string& path = "/v1/cases:watch") {
    auto [host, port] = HostPort(address);
    client_ = std::make_unique<httplib::Client>(host, port);
    client_->set_read_timeout(30, 0);
    thread_ = std::thread([this, headers, path] {
      httplib::Result r = client_->Get(
          path.c_str(), headers,
          [this](const httplib::Response& response) {
            absl::MutexLock lock(&mu_);
            status_ = response.status;
            return true;
          },
          [this](const char* data, size_t size) {
            absl::MutexLock lock(&mu_);
            text_.append(data, size);
            return !stop_;
          });
      absl::MutexLock lock(&mu_);
      ended_ = true;
    });
  }
  ~SseReader() {
    Stop();
    client_->stop();
    thread_.join();
  }
  // WaitFor waits until the stream's text contains needle (true) or 10 s pass.
  bool WaitFor(const std::string& needle) {
    absl::MutexLock lock(&mu_);
    auto found = [&] { return text_.find(needle) != std::string::npos || ended_; };
    mu_.AwaitWithTimeout(absl::Condition(&found), absl::Seconds(10));
    return text_.find(needle) != std::string::npos;
  }
  bool WaitForEnd(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&ended_), timeout);
    return ended_;
  }
  void Stop() {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  std::string text() {
    absl::MutexLock lock(&mu_);
    return text_;
  }
  int status() {
    absl::MutexLock lock(&mu_);
    return status_;
  }

 private:
  std::unique_ptr<httplib::Client> client_;
  absl::Mutex mu_;
  std::string text_ ABSL_GUARDED_BY(mu_);
  int status_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// EventId returns the id of the event about case_id in an SSE text, 0 if none.
uint64_t EventId(const std::string& text, const std::string& case_id) {
  uint64_t id = 0;
  for (absl::string_view event : absl::StrSplit(text, "\n\n")) {
    if (!absl::StrContains(event, absl::StrCat(R"("id":")", case_id, "\""))) continue;
    for (absl::string_view line : absl::StrSplit(event, '\n')) {
      if (absl::ConsumePrefix(&line, "id: ") && absl::SimpleAtoi(line, &id)) return id;
    }
  }
  return id;
}

TEST_F(HttpE2eTest, WatchStreamsEventsAndResumesAfterTheLastEventId) {
  uint64_t first_id = 0;
  {
    SseReader watch(server_.http_address(), {});
    ASSERT_TRUE(watch.WaitFor(": watching")) << watch.text();
    EXPECT_EQ(watch.status(), 200);
    const std::string first = OpenCase("r1");
    ASSERT_TRUE(watch.WaitFor(first)) << watch.text();
    first_id = EventId(watch.text(), first);
    EXPECT_GT(first_id, 0u) << watch.text();
    EXPECT_THAT(watch.text(), HasSubstr("data: {"));
  }
  // Away: two more cases open; resuming after the first event sends them, and not the first.
  const std::string second = OpenCase("r2");
  const std::string third = OpenCase("r3");
  SseReader resumed(server_.http_address(), {{"Last-Event-ID", absl::StrCat(first_id)}});
  ASSERT_TRUE(resumed.WaitFor(third)) << resumed.text();
  EXPECT_THAT(resumed.text(), HasSubstr(second));
  EXPECT_EQ(EventId(resumed.text(), second), first_id + 1);
  EXPECT_THAT(resumed.text(), Not(HasSubstr(absl::StrCat("id: ", first_id, "\n"))));
  // ?after= does the same; a filter applies to the replayed events too.
  SseReader filtered(server_.http_address(), {},
                     absl::StrCat("/v1/cases:watch?lane=security&after=", first_id));
  ASSERT_TRUE(filtered.WaitFor(": watching"));
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_THAT(filtered.text(), Not(HasSubstr(second)));
}

TEST_F(HttpE2eTest, ASummaryWatchLeavesOutEvidenceHistoryAndRequestIdsAlsoWhenResuming) {
  uint64_t first_id = 0;
  const std::string first = OpenCase("r1");
  {
    SseReader full(server_.http_address(), {});
    ASSERT_TRUE(full.WaitFor(": watching")) << full.text();
    const std::string second = OpenCase("r2");
    ASSERT_TRUE(full.WaitFor(second)) << full.text();
    EXPECT_THAT(full.text(), HasSubstr(R"("evidence":)"));
    EXPECT_THAT(full.text(), HasSubstr(R"("history":[{)"));
    EXPECT_THAT(full.text(), HasSubstr(R"("request_ids":[")"));
    first_id = EventId(full.text(), second) - 1;
  }
  // From the history (the first case) and live (the third): both summaries.
  SseReader summary(server_.http_address(), {},
                    absl::StrCat("/v1/cases:watch?view=summary&after=", first_id - 1));
  ASSERT_TRUE(summary.WaitFor(": watching")) << summary.text();
  const std::string third = OpenCase("r3");
  ASSERT_TRUE(summary.WaitFor(third)) << summary.text();
  EXPECT_THAT(summary.text(), HasSubstr(first));
  EXPECT_THAT(summary.text(), HasSubstr(R"("owner":)"));
  EXPECT_THAT(summary.text(), Not(HasSubstr(R"("evidence":)")));
  EXPECT_THAT(summary.text(), Not(HasSubstr(R"("history":[{)")));
  EXPECT_THAT(summary.text(), Not(HasSubstr(R"("request_ids":[")")));
}

TEST_F(HttpE2eTest, AWatchStreamEndsWhenTheServerStops) {
  SseReader watch(server_.http_address(), {});
  ASSERT_TRUE(watch.WaitFor(": watching")) << watch.text();
  const absl::Time start = absl::Now();
  server_.Signal(SIGTERM);
  EXPECT_EQ(server_.Wait(absl::Seconds(15)), 0) << server_.log();
  EXPECT_TRUE(watch.WaitForEnd(absl::Seconds(5)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(8));
}

TEST_F(HttpE2eTest, WatchStreamsCountAgainstTheWatcherBound) {
  server_.Signal(SIGTERM);
  server_.Wait();
  testing::ServerProcess bounded;
  ASSERT_TRUE(
      bounded.Start(AGATE_SERVER_BIN, {"--matrix", kMatrix, "--listen", "127.0.0.1:0",
                                       "--http-listen", "127.0.0.1:0", "--max-watchers", "1"}))
      << bounded.log();
  auto one = std::make_unique<SseReader>(bounded.http_address(), httplib::Headers{});
  ASSERT_TRUE(one->WaitFor(": watching"));
  auto [host, port] = HostPort(bounded.http_address());
  httplib::Client second(host, port);
  httplib::Result refused = second.Get("/v1/cases:watch");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 429);
  EXPECT_THAT(refused->body, HasSubstr("--max-watchers"));
  // The client goes away: its stream ends (a heartbeat finds the connection closed) and gives
  // its place back.
  one.reset();
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  bool reopened = false;
  while (!reopened && absl::Now() < deadline) {
    SseReader again(bounded.http_address(), {});
    reopened = again.WaitFor(": watching");
    if (!reopened) absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_TRUE(reopened) << bounded.log();
}

TEST_F(HttpE2eTest, MetricsParseWithThePrometheusClient) {
  OpenCase("r1");
  OpenCase("r2");
  Post("/v1/evaluate", Lookup("l1"));
  Post("/v1/evaluate", R"({"tenant_id":"acme"})");  // refused: an error
  httplib::Result scrape = Get("/metrics");
  ASSERT_TRUE(scrape);
  EXPECT_EQ(scrape->status, 200);
  EXPECT_EQ(scrape->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  testing::TempDir dir;
  const std::string path = dir.path() + "/metrics.txt";
  std::ofstream(path) << scrape->body;
  const testing::RunResult parsed =
      testing::Run({"/usr/bin/python3", AGATE_SOURCE_DIR "/tests/e2e/parse_metrics.py", path});
  ASSERT_EQ(parsed.exit_code, 0) << parsed.err << scrape->body;
  // Families as the parser names them (a counter's without _total), samples with sorted labels.
  const char* const kExpected[] = {
      "family agate_decisions counter\n",
      "agate_decisions_total{verdict=BLOCK} 2.0\n",
      "agate_decisions_total{verdict=ALLOW} 1.0\n",
      "agate_evaluate_errors_total 1.0\n",
      "family agate_escalations counter\n",
      "agate_escalations_total{lane=financial,verdict=BLOCK} 2.0\n",
      "family agate_open_cases gauge\n",
      "agate_open_cases 2.0\n",
      "agate_open_cases_by_lane{lane=financial} 2.0\n",
      "family agate_evaluate_duration_seconds histogram\n",
      "agate_evaluate_duration_seconds_count 3.0\n",
      "agate_evaluate_duration_seconds_bucket{le=+Inf} 3.0\n",
      "agate_trigger_fired_total{lane=financial,trigger=refund-over-limit} 2.0\n",
      "family agate_acks counter\n",
      "agate_matrix_info{version=",
      "family agate_store_commit_duration_seconds histogram\n",
      "agate_store_commit_duration_seconds_bucket{le=+Inf} ",
  };
  for (const char* expected : kExpected) EXPECT_THAT(parsed.out, HasSubstr(expected));
}

// Maps returns what /proc/PID/maps says the process has mapped.
std::string Maps(pid_t pid) {
  std::ifstream maps(absl::StrCat("/proc/", pid, "/maps"));
  std::stringstream text;
  text << maps.rdbuf();
  return text.str();
}

TEST_F(HttpE2eTest, TheModuleIsNotLoadedWithoutAnHttpListener) {
  EXPECT_THAT(Maps(server_.pid()), HasSubstr("agate_http.so"));
  testing::ServerProcess plain;
  ASSERT_TRUE(plain.Start(AGATE_SERVER_BIN, {"--matrix", kMatrix, "--listen", "127.0.0.1:0"}))
      << plain.log();
  const std::string without = Maps(plain.pid());
  EXPECT_THAT(without, Not(HasSubstr("agate_http.so")));
  EXPECT_THAT(without, Not(HasSubstr("httplib")));
}

TEST(HttpStartupTest, ABadHttpListenAddressIsAClearStartupError) {
  const testing::RunResult bad =
      testing::Run({AGATE_SERVER_BIN, "--matrix", kMatrix, "--http-listen", "127.0.0.1:http"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--http-listen 127.0.0.1:http: "));
  // A port in use: the server does not start.
  testing::ServerProcess first;
  ASSERT_TRUE(first.Start(AGATE_SERVER_BIN, {"--matrix", kMatrix, "--listen", "127.0.0.1:0",
                                             "--http-listen", "127.0.0.1:0"}))
      << first.log();
  const testing::RunResult taken =
      testing::Run({AGATE_SERVER_BIN, "--matrix", kMatrix, "--listen", "127.0.0.1:0", "--store",
                    "memory", "--http-listen", first.http_address()});
  EXPECT_EQ(taken.exit_code, 1) << taken.err;
  EXPECT_THAT(taken.err,
              HasSubstr(absl::StrCat("--http-listen: cannot listen on ", first.http_address())));
}

// The operator console (--console-dir) over real HTTP: the files, a missing directory stops the
// start, byte ranges, and compression (server/http_module.cc, Body).
TEST(HttpConsoleTest, ServesTheConsoleWithRangesAndGzip) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.path() + "/console");
  const std::string script = "console.log('" + std::string(4000, 'x') + "');\n";
  testing::WriteFileOrDie(dir.path() + "/console/index.html", "<!doctype html><p>agate</p>");
  testing::WriteFileOrDie(dir.path() + "/console/app-AB12CD34.js", script);

  const testing::RunResult missing = testing::Run(
      {AGATE_SERVER_BIN, "--matrix", kMatrix, "--listen", "127.0.0.1:0", "--store", "memory",
       "--http-listen", "127.0.0.1:0", "--console-dir", dir.path() + "/nowhere"});
  EXPECT_EQ(missing.exit_code, 1) << missing.err;
  EXPECT_THAT(missing.err, HasSubstr(absl::StrCat("--console-dir ", dir.path(), "/nowhere: ")));

  testing::ServerProcess server;
  ASSERT_TRUE(server.Start(
      AGATE_SERVER_BIN, {"--matrix", kMatrix, "--listen", "127.0.0.1:0", "--store", "memory",
                         "--http-listen", "127.0.0.1:0", "--console-dir", dir.path() + "/console"}))
      << server.log();
  auto [host, port] = HostPort(server.http_address());
  httplib::Client client(host, port);
  client.set_read_timeout(10, 0);
  client.set_decompress(false);  // the bytes as sent
  httplib::Result index = client.Get("/", {{"Accept-Encoding", "identity"}});
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_EQ(index->body, "<!doctype html><p>agate</p>");
  EXPECT_EQ(index->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(index->get_header_value("Cache-Control"), "no-cache");
  EXPECT_EQ(index->get_header_value("Vary"), "Accept-Encoding");
  httplib::Result traversal = client.Get("/../../../etc/passwd");
  ASSERT_TRUE(traversal);
  EXPECT_EQ(traversal->status, 404);
  EXPECT_THAT(traversal->body, Not(HasSubstr("root:")));

  // A Range on a file: 206 with exactly those bytes, never compressed (httplib by itself sent a
  // 200 holding the fragment, compressed).
  for (const char* encoding : {"identity", "gzip", "br"}) {
    SCOPED_TRACE(encoding);
    httplib::Result part =
        client.Get("/app-AB12CD34.js", {{"Range", "bytes=0-9"}, {"Accept-Encoding", encoding}});
    ASSERT_TRUE(part);
    EXPECT_EQ(part->status, 206);
    EXPECT_EQ(part->get_header_value("Content-Range"), absl::StrCat("bytes 0-9/", script.size()));
    EXPECT_FALSE(part->has_header("Content-Encoding"));
    EXPECT_EQ(part->body, script.substr(0, 10));
  }
  // Compression: gzip when accepted (decoded by the client, it is the file); never brotli, which
  // httplib did at its slowest quality (seconds for a large ListCases page).
  httplib::Client decoding(host, port);
  httplib::Result gzip = decoding.Get("/app-AB12CD34.js", {{"Accept-Encoding", "gzip, br"}});
  ASSERT_TRUE(gzip);
  EXPECT_EQ(gzip->get_header_value("Content-Encoding"), "gzip");
  EXPECT_EQ(gzip->get_header_value("Vary"), "Accept-Encoding");
  EXPECT_EQ(gzip->body, script);
  httplib::Result br = client.Get("/app-AB12CD34.js", {{"Accept-Encoding", "br"}});
  ASSERT_TRUE(br);
  EXPECT_FALSE(br->has_header("Content-Encoding"));
  EXPECT_EQ(br->body, script);
  httplib::Result refused = client.Get("/app-AB12CD34.js", {{"Accept-Encoding", "gzip;q=0"}});
  ASSERT_TRUE(refused);
  EXPECT_FALSE(refused->has_header("Content-Encoding"));
  // An error is never cut by a Range.
  httplib::Result error = client.Get("/v1/nope", {{"Range", "bytes=0-3"}});
  ASSERT_TRUE(error);
  EXPECT_EQ(error->status, 404);
  EXPECT_THAT(error->body, HasSubstr(R"("message":"no such path: /v1/nope")"));
}

// With an access policy: TLS, and the same identity and authorization as gRPC.
class HttpAuthE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string& dir = dir_.path();
    const testing::TestCa ca = testing::TestCa::Create();
    testing::WritePem(dir, "server", testing::LocalhostServerCert(ca));
    testing::WriteFileOrDie(dir + "/ca.crt", ca.pem().cert_pem);
    testing::WriteFileOrDie(dir + "/jwks.json", testing::Jwks({{&idp_key_, "rsa-1"}}));
    testing::WriteFileOrDie(dir + "/access.yaml", R"(version: 1
issuers:
  - issuer: https://idp.test
    audience: agate
    jwks: jwks.json
agents:
  - principal: support-bot
    tenants: [acme]
    agent_ids: [support-bot]
operators:
  - group: finance-approver
    tenants: [acme]
admins:
  - subject: root@example.com
)");
    ASSERT_TRUE(
        server_.Start(AGATE_SERVER_BIN,
                      {"--matrix", kMatrix, "--access", dir + "/access.yaml", "--tls-cert",
                       dir + "/server.crt", "--tls-key", dir + "/server.key", "--listen",
                       "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--data-dir", dir + "/data"}))
        << server_.log();
    EXPECT_THAT(server_.log(), HasSubstr("serving HTTP on 127.0.0.1:"));
    auto [host, port] = HostPort(server_.http_address());
    client_ = std::make_unique<httplib::SSLClient>(host, port);
    client_->set_ca_cert_path((dir + "/ca.crt").c_str());
    client_->enable_server_certificate_verification(true);
  }

  std::string Token(const std::string& subject, const std::string& groups = "[]") const {
    const int64_t now = absl::ToUnixSeconds(absl::Now());
    return testing::SignJwt(
        idp_key_, R"({"alg":"RS256","kid":"rsa-1","typ":"JWT"})",
        absl::StrCat(R"({"iss":"https://idp.test","aud":"agate","sub":")", subject,
                     R"(","groups":)", groups, R"(,"iat":)", now, R"(,"exp":)", now + 600, "}"));
  }
  httplib::Headers Bearer(const std::string& token) {
    return {{"Authorization", "Bearer " + token}};
  }

  testing::TempDir dir_;
  const testing::TestKey idp_key_ = testing::TestKey::Generate(testing::KeyType::kRsa2048);
  testing::ServerProcess server_;
  std::unique_ptr<httplib::SSLClient> client_;
};

TEST_F(HttpAuthE2eTest, EveryCallIsAuthenticatedAndAuthorizedAsOverGrpc) {
  // No token: 401 on every API path.
  for (const char* path : {"/v1/cases", "/v1/stats", "/v1/cases/c-1", "/metrics"}) {
    httplib::Result r = client_->Get(path);
    ASSERT_TRUE(r) << path << " " << httplib::to_string(r.error());
    EXPECT_EQ(r->status, 401) << path << " " << r->body;
    EXPECT_THAT(r->body, HasSubstr(R"("status":"UNAUTHENTICATED")"));
  }
  httplib::Result anonymous = client_->Post("/v1/evaluate", Refund("r0"), "application/json");
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 401);
  // A forged token: 401.
  httplib::Result forged = client_->Get("/v1/cases", Bearer(Token("support-bot") + "x"));
  ASSERT_TRUE(forged);
  EXPECT_EQ(forged->status, 401);
  // The agent evaluates for its tenant; not for another (403, naming the field).
  httplib::Result r1 =
      client_->Post("/v1/evaluate", Bearer(Token("support-bot")), Refund("r1"), "application/json");
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->status, 200) << r1->body;
  const std::string case_id = JsonField(r1->body, "case_id");
  httplib::Result other = client_->Post("/v1/evaluate", Bearer(Token("support-bot")),
                                        Refund("r2", "globex"), "application/json");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 403) << other->body;
  EXPECT_THAT(other->body, HasSubstr("tenant_id: agent support-bot may not act"));
  // A person may not evaluate; the agent may not acknowledge; the owner may.
  const std::string bob = Token("bob@example.com", R"(["finance-approver"])");
  httplib::Result person =
      client_->Post("/v1/evaluate", Bearer(bob), Refund("r3"), "application/json");
  ASSERT_TRUE(person);
  EXPECT_EQ(person->status, 403);
  const std::string ack_path = absl::StrCat("/v1/cases/", case_id, ":acknowledge");
  httplib::Result by_agent =
      client_->Post(ack_path, Bearer(Token("support-bot")), R"({"decision":"DECISION_APPROVE"})",
                    "application/json");
  ASSERT_TRUE(by_agent);
  EXPECT_EQ(by_agent->status, 403) << by_agent->body;
  httplib::Result claimed = client_->Post(
      ack_path, {{"Authorization", "Bearer " + bob}, {"X-Agate-Approver", "controller"}},
      R"({"decision":"DECISION_APPROVE"})", "application/json");
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->status, 403) << claimed->body;
  EXPECT_THAT(claimed->body, HasSubstr("the approver is always the caller"));
  httplib::Result by_bob = client_->Post(ack_path, Bearer(bob),
                                         R"({"decision":"DECISION_APPROVE"})", "application/json");
  ASSERT_TRUE(by_bob);
  EXPECT_EQ(by_bob->status, 200) << by_bob->body;
  EXPECT_THAT(by_bob->body, HasSubstr(R"("state":"CASE_STATE_APPROVED")"));
  // /metrics: admins only.
  httplib::Result bob_metrics = client_->Get("/metrics", Bearer(bob));
  ASSERT_TRUE(bob_metrics);
  EXPECT_EQ(bob_metrics->status, 403);
  httplib::Result root_metrics = client_->Get("/metrics", Bearer(Token("root@example.com")));
  ASSERT_TRUE(root_metrics);
  EXPECT_EQ(root_metrics->status, 200);
  EXPECT_THAT(root_metrics->body, HasSubstr("# TYPE agate_decisions_total counter"));
  // Health needs no token.
  httplib::Result health = client_->Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST_F(HttpAuthE2eTest, TheDecisionLogRecordsWhatWasRefusedOverHttp) {
  httplib::Result anonymous = client_->Get("/v1/cases");
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 401);
  const std::string bob = Token("bob@example.com", R"(["finance-approver"])");
  httplib::Result person =
      client_->Post("/v1/evaluate", Bearer(bob), Refund("r1"), "application/json");
  ASSERT_TRUE(person);
  EXPECT_EQ(person->status, 403);
  server_.Signal(SIGTERM);
  ASSERT_EQ(server_.Wait(), 0) << server_.log();
  std::ifstream in(dir_.path() + "/data/decisions/decisions-000001.jsonl");
  std::stringstream log;
  log << in.rdbuf();
  EXPECT_THAT(log.str(),
              HasSubstr(R"("event":"refused","method":"ListCases","code":"UNAUTHENTICATED")"));
  EXPECT_THAT(log.str(),
              HasSubstr(R"("event":"refused","method":"Evaluate","code":"PERMISSION_DENIED")"));
  EXPECT_THAT(log.str(), HasSubstr(R"("subject":"bob@example.com")"));
}

}  // namespace
}  // namespace agate
