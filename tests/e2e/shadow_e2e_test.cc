// End to end: shadow mode (agate-server --shadow-matrix, GetShadowReport, `agate shadow
// --server`) and the request capture (--capture-requests) through the real server and CLI.
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "agate/v1/agate.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"
#include "tests/testing/reload_matrices.h"

namespace agate {
namespace {

using ::agate::testing::ReloadMatrix;

using ::agate::testing::RunResult;
using ::agate::testing::ServerProcess;
using ::agate::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

// Live allows a $200 refund (limit 250, owner alice); the candidate blocks it (limit 100, owner
// carol).
const std::string kLive = ReloadMatrix("1", /*strict=*/false);
const std::string kCandidate = ReloadMatrix("2", /*strict=*/true);

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

v1::EvaluateRequest Refund(const std::string& id, const std::string& item, double amount) {
  v1::EvaluateRequest r;
  r.set_request_id(id);
  r.set_tenant_id("t1");
  r.set_agent_id("agent-1");
  r.set_workflow_id("refunds");
  r.set_item_id(item);
  r.mutable_action()->set_type("refund");
  r.mutable_action()->set_amount(amount);
  (*r.mutable_evidence())["justification"] = "customer asked";
  return r;
}

class ShadowE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    live_ = dir_.path() + "/live.yaml";
    candidate_ = dir_.path() + "/candidate.yaml";
    Write(live_, kLive);
    Write(candidate_, kCandidate);
  }

  bool StartServer(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--matrix",    live_,     "--listen",
                                     "127.0.0.1:0", "--store", "memory"};
    args.insert(args.end(), extra.begin(), extra.end());
    if (!server_.Start(AGATE_SERVER_BIN, args)) return false;
    stub_ = v1::Agate::NewStub(
        grpc::CreateChannel(server_.address(), grpc::InsecureChannelCredentials()));
    return true;
  }

  v1::EvaluateResponse Evaluate(const v1::EvaluateRequest& request) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::EvaluateResponse response;
    const grpc::Status status = stub_->Evaluate(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  // Report runs `agate shadow --server --json` and parses its one JSON object.
  google::protobuf::Struct Report() {
    RunResult r = testing::Run({AGATE_CLI_BIN, "shadow", "--server", server_.address(), "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    google::protobuf::Struct parsed;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &parsed).ok()) << r.out;
    return parsed;
  }

  // Transition returns the count of (live, shadow) in report (0 when absent) and its samples.
  static double Transition(const google::protobuf::Struct& report, const std::string& live,
                           const std::string& shadow, std::vector<std::string>* samples = nullptr) {
    for (const auto& t : report.fields().at("transitions").list_value().values()) {
      const auto& f = t.struct_value().fields();
      if (f.at("live").string_value() != live || f.at("shadow").string_value() != shadow) continue;
      if (samples != nullptr) {
        for (const auto& s : f.at("samples").list_value().values()) {
          samples->push_back(s.string_value());
        }
      }
      return f.at("count").number_value();
    }
    return 0;
  }

  // Reload sends SIGHUP and waits (bounded) until the log has grown by a line containing what.
  bool Reload(const std::string& what) {
    const size_t before = server_.log().size();
    server_.Signal(SIGHUP);
    for (int i = 0; i < 200; ++i) {
      if (server_.log().find(what, before) != std::string::npos) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }

  uint64_t OpenCases() {
    grpc::ClientContext context;
    v1::GetStatsResponse stats;
    EXPECT_TRUE(stub_->GetStats(&context, v1::GetStatsRequest(), &stats).ok());
    return stats.open_cases();
  }

  TempDir dir_;
  std::string live_;
  std::string candidate_;
  ServerProcess server_;
  std::unique_ptr<v1::Agate::Stub> stub_;
};

TEST_F(ShadowE2eTest, CountsWhatTheCandidateWouldChangeWithoutOpeningItsCases) {
  ASSERT_TRUE(StartServer({"--shadow-matrix", candidate_})) << server_.log();
  EXPECT_THAT(server_.log(), HasSubstr("shadow mode: every request is also decided by"));
  // Five orders over the candidate's limit (one retried twice: it joins its case), three under.
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Evaluate(Refund(absl::StrCat("big-", i), absl::StrCat("order-", i), 200)).verdict(),
              v1::VERDICT_ALLOW);
  }
  Evaluate(Refund("big-0-retry-1", "order-0", 200));
  Evaluate(Refund("big-0-retry-2", "order-0", 200));
  for (int i = 0; i < 3; ++i) {
    Evaluate(Refund(absl::StrCat("small-", i), absl::StrCat("order-", i), 50));
  }
  // An idempotent retry (the same request again) is answered from the cache, not shadowed again.
  Evaluate(Refund("big-1", "order-1", 200));

  const google::protobuf::Struct report = Report();
  const auto& f = report.fields();
  EXPECT_EQ(f.at("requests").number_value(), 10);
  EXPECT_EQ(f.at("changed").number_value(), 7);
  std::vector<std::string> samples;
  EXPECT_EQ(Transition(report, "VERDICT_ALLOW", "VERDICT_BLOCK", &samples), 7);
  EXPECT_EQ(Transition(report, "VERDICT_ALLOW", "VERDICT_ALLOW"), 3);
  EXPECT_EQ(samples, (std::vector<std::string>{"big-0", "big-1", "big-2"}));
  const auto& trigger = f.at("triggers").list_value().values(0).struct_value().fields();
  EXPECT_EQ(trigger.at("trigger_id").string_value(), "refund-over-limit");
  EXPECT_EQ(trigger.at("newly_fires").number_value(), 7);
  const auto& lane = f.at("forecast").list_value().values(0).struct_value().fields();
  EXPECT_EQ(lane.at("lane").string_value(), "financial");
  EXPECT_EQ(lane.at("owner").string_value(), "carol");
  EXPECT_EQ(lane.at("live_escalations").number_value(), 0);
  EXPECT_EQ(lane.at("escalations").number_value(), 5);  // order-0's retries join its case
  EXPECT_GT(lane.at("per_hour").number_value(), 0);
  EXPECT_FALSE(lane.at("time_measured").bool_value());  // no case was ever decided: the SLA
  EXPECT_EQ(lane.at("time_per_case_seconds").number_value(), 4 * 3600);
  EXPECT_EQ(f.at("candidate_matrix_version").string_value(), "2");

  // The candidate opened nothing: no case, no stats.
  EXPECT_EQ(OpenCases(), 0u);

  RunResult text = testing::Run({AGATE_CLI_BIN, "shadow", "--server", server_.address()});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("10 requests: 7 changed verdict (70.0%)"));
  EXPECT_THAT(text.out, HasSubstr("ALLOW     -> BLOCK            7  e.g. big-0, big-1, big-2"));
  EXPECT_THAT(text.out, HasSubstr("refund-over-limit"));
  EXPECT_THAT(text.out, HasSubstr("workload forecast over"));
}

TEST_F(ShadowE2eTest, ARedemptionIsNotAChange) {
  // Live and candidate agree (both strict); the live BLOCK is approved and redeemed.
  Write(live_, ReloadMatrix("1", /*strict=*/true));
  Write(candidate_, ReloadMatrix("2", /*strict=*/true));
  ASSERT_TRUE(StartServer({"--shadow-matrix", candidate_})) << server_.log();
  const v1::EvaluateResponse blocked = Evaluate(Refund("r1", "order-1", 200));
  ASSERT_EQ(blocked.verdict(), v1::VERDICT_BLOCK);
  RunResult ack = testing::Run({AGATE_CLI_BIN, "ack", "--server", server_.address(), "--case",
                                blocked.case_id(), "--decision", "approve", "--approver", "carol"});
  ASSERT_EQ(ack.exit_code, 0) << ack.err;
  v1::EvaluateRequest redeem = Refund("r2", "order-1", 200);
  redeem.mutable_approval()->set_case_id(blocked.case_id());
  ASSERT_EQ(Evaluate(redeem).verdict(), v1::VERDICT_ALLOW);

  const google::protobuf::Struct report = Report();
  EXPECT_EQ(report.fields().at("changed").number_value(), 0);
  EXPECT_EQ(report.fields().at("redemptions").number_value(), 1);
  EXPECT_EQ(Transition(report, "VERDICT_BLOCK", "VERDICT_BLOCK"), 2);
  EXPECT_EQ(Transition(report, "VERDICT_ALLOW", "VERDICT_BLOCK"), 0);
  const auto& lane = report.fields().at("forecast").list_value().values(0).struct_value().fields();
  EXPECT_EQ(lane.at("live_escalations").number_value(), 1);
  EXPECT_EQ(lane.at("escalations").number_value(), 1);  // the redemption opens nothing
  // The case was decided: the lane's time per case is now measured.
  EXPECT_TRUE(lane.at("time_measured").bool_value());
}

TEST_F(ShadowE2eTest, ReloadsTheCandidateAndKeepsItWhenTheNewOneIsBad) {
  ASSERT_TRUE(StartServer({"--shadow-matrix", candidate_})) << server_.log();
  Evaluate(Refund("before", "order-1", 200));
  EXPECT_EQ(Report().fields().at("changed").number_value(), 1);

  // A candidate equal to the live matrix: a new report, and nothing changes.
  Write(candidate_, ReloadMatrix("3", /*strict=*/false));
  ASSERT_TRUE(Reload("reloaded shadow matrix")) << server_.log();
  EXPECT_THAT(server_.log(), HasSubstr("version 2 -> 3"));
  EXPECT_EQ(Report().fields().at("requests").number_value(), 0);
  Evaluate(Refund("after", "order-2", 200));
  google::protobuf::Struct report = Report();
  EXPECT_EQ(report.fields().at("requests").number_value(), 1);
  EXPECT_EQ(report.fields().at("changed").number_value(), 0);
  EXPECT_EQ(report.fields().at("candidate_matrix_version").string_value(), "3");

  // A bad candidate: logged with its position, counted, the previous candidate kept.
  Write(candidate_,
        "version: 4\nlanes:\n  financial: {owner: a, sla: 30x, verdict: HOLD}\n"
        "triggers: []\n");
  ASSERT_TRUE(Reload("shadow matrix reload failed")) << server_.log();
  EXPECT_THAT(server_.log(), HasSubstr(candidate_ + ":3:"));
  EXPECT_THAT(server_.log(), HasSubstr("still comparing version 3"));
  Evaluate(Refund("after-bad", "order-3", 200));
  report = Report();
  EXPECT_EQ(report.fields().at("candidate_matrix_version").string_value(), "3");
  EXPECT_EQ(report.fields().at("requests").number_value(), 2);  // the same live version: kept
  RunResult metrics =
      testing::Run({AGATE_CLI_BIN, "stats", "--server", server_.address(), "--metrics"});
  EXPECT_THAT(metrics.out, HasSubstr("agate_shadow_matrix_reload_failures_total 1"));
  EXPECT_THAT(metrics.out, HasSubstr("agate_shadow_matrix_reloads_total 1"));
  EXPECT_THAT(metrics.out, HasSubstr("agate_matrix_reload_failures_total 0"));
}

TEST_F(ShadowE2eTest, ABadCandidateStopsTheStartWithItsPosition) {
  Write(candidate_,
        "version: 2\nlanes:\n  financial: {owner: a, sla: 4h, verdict: BLOCKK}\n"
        "triggers:\n  - {id: x, lane: financial, when: 'true'}\n");
  RunResult r = testing::Run({AGATE_SERVER_BIN, "--matrix", live_, "--listen", "127.0.0.1:0",
                              "--store", "memory", "--shadow-matrix", candidate_});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(candidate_ + ":3:"));
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("the shadow matrix ", candidate_, " is invalid")));
}

TEST_F(ShadowE2eTest, WithoutACandidateTheReportIsAFailedPrecondition) {
  ASSERT_TRUE(StartServer()) << server_.log();
  RunResult r = testing::Run({AGATE_CLI_BIN, "shadow", "--server", server_.address()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(r.err, HasSubstr("--shadow-matrix"));
  grpc::ClientContext context;
  v1::ShadowReport report;
  EXPECT_EQ(stub_->GetShadowReport(&context, v1::GetShadowReportRequest(), &report).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  // Offline flags do not mix with --server.
  RunResult mixed =
      testing::Run({AGATE_CLI_BIN, "shadow", "--server", server_.address(), "--live", live_});
  EXPECT_EQ(mixed.exit_code, 2);
  EXPECT_THAT(mixed.err, HasSubstr("--live is for the offline shadow"));
}

TEST_F(ShadowE2eTest, CapturesRedactedRequestsThatOfflineShadowReplays) {
  Write(live_, absl::StrCat(kLive, "capture: {redact: [attributes.email, evidence]}\n"));
  const std::string capture = dir_.path() + "/capture";
  ASSERT_TRUE(StartServer({"--capture-requests", capture, "--capture-max-bytes", "4096"}))
      << server_.log();
  const std::string file = capture + "/requests.jsonl";
  int sent = 0;
  for (; sent < 4; ++sent) {
    v1::EvaluateRequest r = Refund(absl::StrCat("c", sent), "order-1", sent % 2 ? 200 : 50);
    (*r.mutable_attributes()->mutable_fields())["email"].set_string_value("ann@example.com");
    (*r.mutable_attributes()->mutable_fields())["region"].set_string_value("eu");
    Evaluate(r);
  }
  std::string text = ReadAll(file);
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 4u) << text;
  EXPECT_THAT(text, Not(HasSubstr("ann@example.com")));
  EXPECT_THAT(text, Not(HasSubstr("customer asked")));
  EXPECT_THAT(lines[0], HasSubstr(R"("email":"[redacted]")"));
  EXPECT_THAT(lines[0], HasSubstr(R"("justification":"[redacted]")"));
  EXPECT_THAT(lines[0], HasSubstr(R"("region":"eu")"));

  // The file replays offline: the candidate blocks the two $200 refunds.
  RunResult offline = testing::Run({AGATE_CLI_BIN, "shadow", "--live", live_, "--candidate",
                                    candidate_, "--requests", file, "--json"});
  ASSERT_EQ(offline.exit_code, 0) << offline.err;
  google::protobuf::Struct report;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(offline.out, &report).ok());
  EXPECT_EQ(report.fields().at("requests").number_value(), 4);
  EXPECT_EQ(report.fields().at("changed").number_value(), 2);

  // The bound: the capture stops before the file passes 4096 bytes, and says so once.
  for (; sent < 40; ++sent) Evaluate(Refund(absl::StrCat("c", sent), "order-2", 50));
  struct stat st {};
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_LE(st.st_size, 4096);
  EXPECT_GT(st.st_size, 4096 - 400);
  EXPECT_THAT(server_.log(), HasSubstr("request capture " + file + " stopped"));
  text = ReadAll(file);
  EXPECT_TRUE(absl::EndsWith(text, "}\n"));  // whole lines only
}

TEST_F(ShadowE2eTest, AnUnknownRedactFieldStopsTheStartWithItsPosition) {
  Write(live_, absl::StrCat(kLive, "capture:\n  redact: [evidence, action.amount]\n"));
  RunResult r = testing::Run({AGATE_SERVER_BIN, "--matrix", live_, "--listen", "127.0.0.1:0",
                              "--store", "memory", "--capture-requests", dir_.path() + "/capture"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(live_ + ":11:22: error: capture: redact: unknown field "
                                       "'action.amount'"));
}

TEST_F(ShadowE2eTest, BadCaptureFlagsNameTheFlag) {
  RunResult r = testing::Run({AGATE_SERVER_BIN, "--matrix", live_, "--capture-max-bytes", "4096"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err,
              HasSubstr("--capture-max-bytes: only means something with --capture-requests"));
  r = testing::Run({AGATE_SERVER_BIN, "--matrix", live_, "--capture-requests", dir_.path() + "/c",
                    "--capture-max-bytes", "10"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--capture-max-bytes: must be at least 1024"));
}

}  // namespace
}  // namespace agate
