// CaseReportBuilder and CaseReport (client/case_report.h): what counts toward a trigger, the
// window, the approval rate and the relax threshold at its edges, the text and JSON outputs.
#include "client/case_report.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agate::client {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);
const absl::Time kWeekAgo = kNow - absl::Hours(24 * 7);

// MakeCase is a case of lane opened at `opened`, in state, decided `took` after opening (for a
// decided state), with one FiredTrigger per entry of triggers.
v1::Case MakeCase(const std::string& lane, const std::vector<std::string>& triggers,
                  v1::CaseState state, absl::Time opened, absl::Duration took = absl::Minutes(1)) {
  v1::Case c;
  c.set_lane(lane);
  c.set_state(state);
  *c.mutable_opened_at() = ToTimestamp(opened);
  for (const std::string& t : triggers) {
    v1::FiredTrigger* f = c.add_fired();
    f->set_trigger_id(t);
    f->set_lane(lane);
  }
  v1::Transition* open = c.add_history();
  open->set_state(v1::CASE_STATE_OPEN);
  *open->mutable_time() = ToTimestamp(opened);
  if (state != v1::CASE_STATE_OPEN) {
    v1::Transition* close = c.add_history();
    close->set_state(state);
    *close->mutable_time() = ToTimestamp(opened + took);
  }
  if (state == v1::CASE_STATE_APPROVED) {  // the redemption: a later APPROVED line
    v1::Transition* redeemed = c.add_history();
    redeemed->set_state(state);
    *redeemed->mutable_time() = ToTimestamp(opened + took + absl::Hours(5));
  }
  return c;
}

CaseReport Report(const std::vector<v1::Case>& cases) {
  CaseReportBuilder builder(kWeekAgo, kNow);
  for (const v1::Case& c : cases) EXPECT_TRUE(builder.Add(c));
  return builder.Build();
}

// Decided returns `approved` approved and `rejected` rejected cases of one trigger.
std::vector<v1::Case> Decided(int approved, int rejected) {
  std::vector<v1::Case> cases;
  for (int i = 0; i < approved + rejected; ++i) {
    cases.push_back(MakeCase("financial", {"refund-over-limit"},
                             i < approved ? v1::CASE_STATE_APPROVED : v1::CASE_STATE_REJECTED,
                             kNow - absl::Hours(1 + i)));
  }
  return cases;
}

TEST(CaseReportTest, NoCasesIsAnEmptyReportThatSaysSo) {
  const CaseReport r = Report({});
  EXPECT_EQ(r.cases, 0);
  EXPECT_TRUE(r.triggers.empty());
  EXPECT_THAT(r.Text(), HasSubstr("0 cases opened from "));
  EXPECT_THAT(r.Text(), HasSubstr("no trigger fired in a case of the window"));
  EXPECT_THAT(r.Json(), HasSubstr(R"("cases":0,"triggers":[],"relax_candidates":[])"));
}

TEST(CaseReportTest, CountsEachOutcomeAndTheDecisionsATriggerFiredIn) {
  v1::Case joined = MakeCase("financial", {"refund-over-limit", "refund-over-limit", "new-payee"},
                             v1::CASE_STATE_OPEN, kNow - absl::Hours(2));
  const CaseReport r = Report({
      joined,
      MakeCase("financial", {"refund-over-limit"}, v1::CASE_STATE_APPROVED, kNow - absl::Hours(3)),
      MakeCase("financial", {"refund-over-limit"}, v1::CASE_STATE_REJECTED, kNow - absl::Hours(4)),
      MakeCase("financial", {"refund-over-limit"}, v1::CASE_STATE_EXPIRED, kNow - absl::Hours(5)),
      MakeCase("ops", {"integration-errors"}, v1::CASE_STATE_RESOLVED, kNow - absl::Hours(6)),
  });
  EXPECT_EQ(r.cases, 5);
  ASSERT_EQ(r.triggers.size(), 3u);  // by lane, then id
  EXPECT_EQ(r.triggers[0].trigger_id, "new-payee");
  const TriggerOutcome& refund = r.triggers[1];
  EXPECT_EQ(refund.trigger_id, "refund-over-limit");
  EXPECT_EQ(refund.lane, "financial");
  EXPECT_EQ(refund.fired, 5);  // twice in the joined case
  EXPECT_EQ(refund.cases, 4);
  EXPECT_EQ(refund.open, 1);
  EXPECT_EQ(refund.approved, 1);
  EXPECT_EQ(refund.rejected, 1);
  EXPECT_EQ(refund.expired, 1);
  EXPECT_EQ(refund.resolved, 0);
  EXPECT_EQ(refund.approval_rate(), 0.5);
  const TriggerOutcome& ops = r.triggers[2];
  EXPECT_EQ(ops.lane, "ops");
  EXPECT_EQ(ops.resolved, 1);
  EXPECT_EQ(ops.approval_rate(), std::nullopt);  // resolving is not approving
  EXPECT_EQ(ops.median_time_to_decision, absl::Minutes(1));
  EXPECT_THAT(r.Text(), HasSubstr("approved or rejected cases): none\n"));
}

TEST(CaseReportTest, OpenCasesCountNeitherTowardTheRateNorTheTimeToDecision) {
  std::vector<v1::Case> cases = Decided(20, 0);
  for (int i = 0; i < 30; ++i) {
    cases.push_back(
        MakeCase("financial", {"refund-over-limit"}, v1::CASE_STATE_OPEN, kNow - absl::Minutes(i)));
  }
  const TriggerOutcome t = Report(cases).triggers.at(0);
  EXPECT_EQ(t.open, 30);
  EXPECT_EQ(t.cases, 50);
  EXPECT_EQ(t.approval_rate(), 1.0);
  EXPECT_TRUE(t.relax_candidate());
  EXPECT_EQ(t.median_time_to_decision, absl::Minutes(1));
}

TEST(CaseReportTest, TheRelaxThresholdIsMoreThan95PercentOfAtLeast20) {
  struct Case {
    int approved, rejected;
    bool candidate;
  };
  for (const Case& c :
       std::vector<Case>{{19, 1, false},  // exactly 20 at exactly 95%: not more than 95%
                         {20, 0, true},   // 20 at 100%
                         {19, 0, false},  // 100% of 19: too few
                         {21, 1, true},   // 95.45% of 22
                         {38, 2, false},  // 95% of 40
                         {39, 2, true},   // 95.12% of 41
                         {0, 25, false}}) {
    const TriggerOutcome t = Report(Decided(c.approved, c.rejected)).triggers.at(0);
    EXPECT_EQ(t.relax_candidate(), c.candidate) << c.approved << " of " << c.approved + c.rejected;
  }
}

TEST(CaseReportTest, ExpiredAndResolvedCasesDoNotMakeACandidate) {
  std::vector<v1::Case> cases = Decided(19, 0);
  cases.push_back(
      MakeCase("financial", {"refund-over-limit"}, v1::CASE_STATE_EXPIRED, kNow - absl::Hours(1)));
  cases.push_back(
      MakeCase("financial", {"refund-over-limit"}, v1::CASE_STATE_RESOLVED, kNow - absl::Hours(1)));
  EXPECT_FALSE(Report(cases).triggers.at(0).relax_candidate());
}

TEST(CaseReportTest, ACaseOpenedBeforeTheWindowStopsTheReport) {
  CaseReportBuilder builder(kWeekAgo, kNow);
  EXPECT_TRUE(builder.Add(MakeCase("financial", {"refund-over-limit"}, v1::CASE_STATE_APPROVED,
                                   kWeekAgo)));  // the window's first instant is in it
  EXPECT_TRUE(builder.Add(MakeCase("financial", {"refund-over-limit"}, v1::CASE_STATE_OPEN,
                                   kNow + absl::Seconds(2))));  // the server's clock ahead
  EXPECT_FALSE(builder.Add(MakeCase("financial", {"refund-over-limit"}, v1::CASE_STATE_REJECTED,
                                    kWeekAgo - absl::Seconds(1))));
  const CaseReport r = builder.Build();
  EXPECT_EQ(r.cases, 2);
  EXPECT_EQ(r.triggers.at(0).rejected, 0);
}

TEST(CaseReportTest, TheMedianIsTheUpperMedianOfTheDecidedCasesFirstDecision) {
  std::vector<v1::Case> cases;
  for (int minutes : {10, 1, 30, 5}) {
    cases.push_back(MakeCase("financial", {"refund-over-limit"}, v1::CASE_STATE_APPROVED,
                             kNow - absl::Hours(1), absl::Minutes(minutes)));
  }
  // The redemption 5 h later is not the decision.
  EXPECT_EQ(Report(cases).triggers.at(0).median_time_to_decision, absl::Minutes(10));
  // A decided case whose history kept no decision line gives no sample.
  v1::Case trimmed = cases[0];
  trimmed.clear_history();
  EXPECT_EQ(Report({trimmed}).triggers.at(0).median_time_to_decision, std::nullopt);
}

TEST(CaseReportTest, TextAndJsonNameTheCandidateWithItsNumbers) {
  std::vector<v1::Case> cases = Decided(24, 1);
  cases.push_back(
      MakeCase("customer", {"low-confidence"}, v1::CASE_STATE_REJECTED, kNow - absl::Hours(1)));
  const CaseReport r = Report(cases);
  const std::string text = r.Text();
  EXPECT_THAT(text, HasSubstr("26 cases opened from 2027-01-08T08:00:00Z to 2027-01-15T08:00:00Z"));
  EXPECT_THAT(text, HasSubstr("TRIGGER"));
  EXPECT_THAT(text, HasSubstr("96.0%"));
  EXPECT_THAT(text, HasSubstr("refund-over-limit (lane financial): approved 24 of 25 approved or "
                              "rejected cases (96.0%), median time to decision 1m"));
  EXPECT_THAT(text, Not(HasSubstr("low-confidence (lane")));
  const std::string json = r.Json();
  EXPECT_THAT(json, HasSubstr(R"({"trigger_id":"low-confidence","lane":"customer","fired":1,)"
                              R"("cases":1,"open":0,"approved":0,"rejected":1,"resolved":0,)"
                              R"("expired":0,"approval_rate":0.0000,)"
                              R"("median_time_to_decision_seconds":60.000,)"
                              R"("relax_candidate":false})"));
  EXPECT_THAT(json, HasSubstr(R"("approval_rate":0.9600)"));
  EXPECT_THAT(json, HasSubstr(R"("relax_candidates":["refund-over-limit"]})"));
}

TEST(CaseReportTest, SinceMustBeAPositiveDurationNamingTheFlag) {
  EXPECT_EQ(*ParseSince("7d"), absl::Hours(24 * 7));
  EXPECT_EQ(*ParseSince("36h"), absl::Hours(36));
  for (const char* bad : {"", "7", "7w", "-1d", "0d", "400d", "7 d"}) {
    const absl::Status s = ParseSince(bad).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("--since: ")) << bad;
  }
  EXPECT_THAT(ParseSince("7w").status().message(), HasSubstr("invalid duration '7w'"));
}

}  // namespace
}  // namespace agate::client
