// `agate report` through the real server and CLI: cases opened, approved and rejected by
// their owners, then the report's counts, rates, relax finding, window and errors.
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/case_report.h"
#include "client/client.h"
#include "client/grpc_status.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"

namespace agate {
namespace {

using ::agate::testing::RunResult;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kMatrix[] = AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml";

class ReportE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start(
        AGATE_SERVER_BIN, {"--matrix", kMatrix, "--listen", "unix:" + dir_.path() + "/agate.sock"}))
        << server_.log();
    auto c = client::Client::Create({.target = server_.address(), .timeout = absl::Seconds(10)});
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = *std::move(c);
  }

  // Open evaluates one request that opens a case and returns its id.
  std::string Open(const std::string& json) {
    v1::EvaluateRequest request;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &request).ok()) << json;
    absl::StatusOr<v1::EvaluateResponse> r = client_->Evaluate(request);
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_FALSE(r->case_id().empty()) << json;
    return r->case_id();
  }

  void Acknowledge(const std::string& id, v1::Decision decision, const std::string& approver) {
    v1::AcknowledgeRequest request;
    request.set_case_id(id);
    request.set_decision(decision);
    request.set_approver(approver);
    v1::AcknowledgeResponse response;
    std::unique_ptr<grpc::ClientContext> context = client_->NewContext();
    EXPECT_TRUE(
        client::FromGrpcStatus(client_->stub().Acknowledge(context.get(), request, &response))
            .ok());
  }

  // Opens 21 refund cases (20 approved, 1 left open) and 3 discount cases (2 rejected, 1
  // approved).
  void OpenAndDecide() {
    for (int i = 0; i < 21; ++i) {
      const std::string id = Open(absl::StrCat(
          R"({"request_id":"refund-)", i, R"(","tenant_id":"acme","workflow_id":"refunds",)",
          R"("item_id":"order-)", i, R"(","action":{"type":"refund","amount":400}})"));
      if (i < 20) Acknowledge(id, v1::DECISION_APPROVE, "finance-approver");
    }
    for (int i = 0; i < 3; ++i) {
      const std::string id = Open(
          absl::StrCat(R"({"request_id":"discount-)", i,
                       R"(","tenant_id":"acme","workflow_id":"sales",)", R"("item_id":"deal-)", i,
                       R"(","action":{"type":"discount"},"attributes":{"discount_pct":30}})"));
      Acknowledge(id, i < 2 ? v1::DECISION_REJECT : v1::DECISION_APPROVE, "workflow-owner");
    }
  }

  RunResult Report(const std::vector<std::string>& flags) {
    std::vector<std::string> argv = {AGATE_CLI_BIN, "report", "--server", server_.address()};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return testing::Run(argv);
  }

  testing::TempDir dir_;
  testing::ServerProcess server_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(ReportE2eTest, PrintsEachTriggersOutcomesAndNamesTheCandidateToRelax) {
  OpenAndDecide();
  RunResult r = Report({"--since", "7d"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("24 cases opened from "));
  //                                   FIRED CASES OPEN APPROVED REJECTED RESOLVED EXPIRED
  // The median time to decision is a duration (sub-millisecond here: "0").
  EXPECT_THAT(r.out, ContainsRegex("refund-over-limit +financial +21 +21 +1 +20 +0 +0 +0 +100.0% "
                                   "+(0|[0-9.]+(ms|s))\n"));
  EXPECT_THAT(r.out, ContainsRegex("discount-over-threshold +policy +3 +3 +0 +1 +2 +0 +0 +33.3%"));
  EXPECT_THAT(r.out, HasSubstr("refund-over-limit (lane financial): approved 20 of 20 approved or "
                               "rejected cases (100.0%)"));
  EXPECT_THAT(r.out, Not(HasSubstr("discount-over-threshold (lane")));

  RunResult json = Report({"--json"});  // --since defaults to 7d
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_THAT(json.out, HasSubstr(R"("cases":24,)"));
  EXPECT_THAT(json.out, HasSubstr(R"({"trigger_id":"refund-over-limit","lane":"financial",)"
                                  R"("fired":21,"cases":21,"open":1,"approved":20,"rejected":0,)"));
  EXPECT_THAT(json.out, HasSubstr(R"("relax_candidates":["refund-over-limit"]})"));
}

TEST_F(ReportE2eTest, PagesThroughListCases) {
  OpenAndDecide();
  // Five cases a page: the same report as one page of 1,000.
  absl::StatusOr<client::CaseReport> paged =
      client::FetchCaseReport(*client_, absl::Hours(1), absl::Now(), /*page_size=*/5);
  absl::StatusOr<client::CaseReport> whole =
      client::FetchCaseReport(*client_, absl::Hours(1), absl::Now());
  ASSERT_TRUE(paged.ok()) << paged.status();
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(paged->cases, 24);
  EXPECT_EQ(paged->Json().substr(paged->Json().find("\"cases\"")),
            whole->Json().substr(whole->Json().find("\"cases\"")));
}

TEST_F(ReportE2eTest, CasesOpenedBeforeTheWindowAreLeftOut) {
  OpenAndDecide();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  RunResult r = Report({"--since", "1s"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("0 cases opened from "));
  EXPECT_THAT(r.out, HasSubstr("no trigger fired in a case of the window"));
}

TEST_F(ReportE2eTest, ABadSinceIsAUsageErrorNamingTheFlag) {
  for (const char* bad : {"7x", "0d", "-7d", "400d"}) {
    RunResult r = Report({"--since", bad});
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_THAT(r.err, HasSubstr("agate: --since: ")) << bad;
  }
  EXPECT_THAT(Report({"--since", "7x"}).err, HasSubstr("invalid duration '7x'"));
}

TEST(ReportE2eStartTest, NoServerIsUnavailable) {
  testing::TempDir dir;
  RunResult r = testing::Run({AGATE_CLI_BIN, "report", "--server", "unix:" + dir.path() + "/none"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("agate: UNAVAILABLE: "));
}

}  // namespace
}  // namespace agate
