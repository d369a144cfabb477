// Shadow mode in a server (service/live_shadow.h): the candidate reads the live count() windows
// without writing them, opens no case, estimates its cases with the join rule, does not report a
// redemption as a change; and the forecast's measured times, backlogs and breaches
// (service/shadow_report.h).
#include "service/live_shadow.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "cases/signal_counter.h"
#include "common/clock.h"
#include "engine/decision_codec.h"
#include "engine/evaluator.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/testing/fixtures.h"

namespace agate::service {
namespace {

constexpr char kLive[] = R"(version: 1
lanes:
  review: {owner: reviewers, backup: leads, sla: 1h, verdict: HOLD, scope: item}
triggers:
  - {id: big-refund, lane: review, when: 'action.type == "refund" && action.amount > 250.0'}
)";

// The candidate also holds the third retry of a workflow within ten minutes.
constexpr char kCandidate[] = R"(version: 2
lanes:
  review: {owner: reviewers, backup: leads, sla: 1h, verdict: HOLD, scope: item}
triggers:
  - {id: big-refund, lane: review, when: 'action.type == "refund" && action.amount > 250.0'}
  - {id: retry-storm, lane: review, when: 'count("retry", "10m") >= 3'}
)";

std::shared_ptr<const engine::Matrix> Matrix(const char* yaml) {
  return testing::ParseMatrixOrFail(yaml);
}

v1::EvaluateRequest Request(const std::string& id, const std::string& item, double amount,
                            int retries = 0) {
  v1::EvaluateRequest r;
  r.set_request_id(id);
  r.set_tenant_id("t1");
  r.set_workflow_id("w1");
  r.set_item_id(item);
  r.mutable_action()->set_type("refund");
  r.mutable_action()->set_amount(amount);
  if (retries > 0) (*r.mutable_signals())["retry"] = retries;
  return r;
}

class LiveShadowTest : public ::testing::Test {
 protected:
  // Live decides request as the server would (its signals recorded first), then the shadow
  // observes the answer.
  v1::EvaluateResponse Live(const v1::EvaluateRequest& request) {
    signals_.Record(request);
    engine::Decision d = engine::Evaluate(live_, request, clock_.Now(), {.counter = &signals_});
    v1::EvaluateResponse response;
    engine::EncodeDecision(d, &response);
    shadow_.Observe(request, response);
    return response;
  }

  static uint64_t Count(const v1::ShadowReport& report, v1::Verdict live, v1::Verdict shadow) {
    for (const v1::ShadowTransition& t : report.transitions()) {
      if (t.live() == live && t.shadow() == shadow) return t.count();
    }
    return 0;
  }

  FakeClock clock_;
  cases::SlidingWindowCounter signals_{clock_};
  std::shared_ptr<const engine::Matrix> live_ = Matrix(kLive);
  LiveShadow shadow_{live_, Matrix(kCandidate), signals_, clock_};
};

TEST_F(LiveShadowTest, TheCandidateReadsTheLiveCountsWithoutWritingThem) {
  for (int i = 0; i < 3; ++i) Live(Request(absl::StrCat("r", i), "i1", 10, /*retries=*/1));
  EXPECT_EQ(signals_.Count(Request("probe", "i1", 10), "retry", absl::Minutes(10)), 3);
  const v1::ShadowReport report = shadow_.Report({});
  EXPECT_EQ(report.requests(), 3u);
  EXPECT_EQ(report.changed(), 1u);
  EXPECT_EQ(Count(report, v1::VERDICT_ALLOW, v1::VERDICT_ALLOW), 2u);
  EXPECT_EQ(Count(report, v1::VERDICT_ALLOW, v1::VERDICT_HOLD), 1u);
  ASSERT_EQ(report.triggers_size(), 1);
  EXPECT_EQ(report.triggers(0).trigger_id(), "retry-storm");
  EXPECT_THAT(report.triggers(0).samples(), ::testing::ElementsAre("r2"));
}

TEST_F(LiveShadowTest, EstimatesCasesWithTheJoinRuleOverTheSla) {
  Live(Request("a1", "i1", 10, 3));  // the candidate holds: a case for item i1
  Live(Request("a2", "i1", 10, 3));  // joins it
  Live(Request("b1", "i2", 10, 3));  // another item: another case
  clock_.Advance(absl::Hours(2));    // i1's estimated case is past its SLA
  Live(Request("a3", "i1", 10, 3));
  Live(Request("big", "i9", 300));  // both hold: a case on each side
  const v1::ShadowReport report = shadow_.Report({});
  ASSERT_EQ(report.forecast_size(), 1);
  EXPECT_EQ(report.forecast(0).escalations(), 4u);
  EXPECT_EQ(report.forecast(0).live_escalations(), 1u);
  EXPECT_EQ(report.changed(), 4u);
  EXPECT_EQ(Count(report, v1::VERDICT_HOLD, v1::VERDICT_HOLD), 1u);
}

TEST_F(LiveShadowTest, ARedemptionIsComparedByTheLiveMatrixVerdictAndOpensNothing) {
  // The live answer of a redemption: ALLOW, with the trigger that fired and the redeemed case.
  v1::EvaluateRequest request = Request("redeem", "i1", 300);
  signals_.Record(request);
  engine::Decision d = engine::Evaluate(live_, request, clock_.Now(), {.counter = &signals_});
  v1::EvaluateResponse response;
  engine::EncodeDecision(d, &response);
  response.set_verdict(v1::VERDICT_ALLOW);
  response.clear_lane();
  response.add_case_ids("case-1");
  shadow_.Observe(request, response);
  const v1::ShadowReport report = shadow_.Report({});
  EXPECT_EQ(report.changed(), 0u);
  EXPECT_EQ(report.redemptions(), 1u);
  EXPECT_EQ(Count(report, v1::VERDICT_HOLD, v1::VERDICT_HOLD), 1u);
  EXPECT_EQ(report.forecast(0).escalations(), 0u);
  EXPECT_EQ(report.forecast(0).live_escalations(), 0u);
}

TEST_F(LiveShadowTest, ReplayedAnswersAreNotObservedTwice) {
  v1::EvaluateResponse answer = Live(Request("r1", "i1", 300));
  answer.set_replayed(true);
  shadow_.Observe(Request("r1", "i1", 300), answer);
  shadow_.Observe(Request("r1", "i1", 300), v1::EvaluateResponse());  // bytes only: no id
  EXPECT_EQ(shadow_.Report({}).requests(), 1u);
}

TEST_F(LiveShadowTest, ANewCandidateOrLiveMatrixStartsANewReport) {
  Live(Request("r1", "i1", 300));
  clock_.Advance(absl::Minutes(5));
  shadow_.SetCandidate(Matrix(kLive));
  v1::ShadowReport report = shadow_.Report({});
  EXPECT_EQ(report.requests(), 0u);
  EXPECT_EQ(report.candidate_matrix_version(), "1");
  EXPECT_EQ(google::protobuf::util::TimeUtil::TimestampToSeconds(report.since()),
            absl::ToUnixSeconds(clock_.Now()));
  Live(Request("r2", "i1", 300));
  shadow_.SetCandidate(Matrix(kLive));  // the same version again (a SIGHUP): the report goes on
  EXPECT_EQ(shadow_.Report({}).requests(), 1u);
  shadow_.SetLive(Matrix(kCandidate));
  report = shadow_.Report({});
  EXPECT_EQ(report.requests(), 0u);
  EXPECT_EQ(report.live_matrix_version(), "2");
  EXPECT_EQ(report.candidate_matrix_version(), "1");
}

TEST_F(LiveShadowTest, TheForecastUsesMeasuredTimesAndTheOwnersBacklog) {
  for (int i = 0; i < 6; ++i) Live(Request(absl::StrCat("r", i), absl::StrCat("i", i), 10, 3));
  clock_.Advance(absl::Hours(2));
  // Six cases over two hours: 3 an hour. 15 minutes each when measured: 45 review minutes an
  // hour, 18 hours a day; in one SLA (1h) the group decides 4, gets 3 new and holds 5: 4 late.
  ShadowReport::Measured measured;
  measured.median_time_to_decision["review"] = absl::Minutes(15);
  measured.backlog["reviewers"] = 5;
  v1::ShadowLaneForecast row = shadow_.Report(measured).forecast(0);
  EXPECT_EQ(row.escalations(), 6u);
  EXPECT_DOUBLE_EQ(row.per_hour(), 3);
  EXPECT_TRUE(row.time_measured());
  EXPECT_EQ(row.time_per_case().seconds(), 15 * 60);
  EXPECT_DOUBLE_EQ(row.review_hours_per_day(), 3 * 24 * 0.25);
  EXPECT_EQ(row.backlog(), 5u);
  EXPECT_DOUBLE_EQ(row.expected_sla_breaches(), 4);
  // Without a measured time the SLA is the time per case: one case per SLA.
  row = shadow_.Report({}).forecast(0);
  EXPECT_FALSE(row.time_measured());
  EXPECT_DOUBLE_EQ(row.review_hours_per_day(), 3 * 24 * 1.0);
  EXPECT_DOUBLE_EQ(row.expected_sla_breaches(), 2);
  const std::string text = ShadowReport::RenderText(shadow_.Report(measured));
  EXPECT_THAT(text, ::testing::HasSubstr("measured median time to decision"));
  EXPECT_THAT(text, ::testing::HasSubstr(
                        "  review       reviewers                 0         6     +6       3.0     "
                        "1h       15m         18.0       5      4.0"));
}

}  // namespace
}  // namespace agate::service
