// The shadow report (service/shadow_report.h): the accumulator on hand-made decision pairs, and
// the offline run that feeds it (client/offline_eval.h) on two matrices.
#include "service/shadow_report.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/offline_eval.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace agate::service {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

constexpr char kLive[] = R"(version: 1
lanes:
  customer: {owner: support-lead, backup: support-manager, sla: 30m, verdict: HOLD}
  financial: {owner: finance-approver, backup: controller, sla: 4h, verdict: BLOCK}
triggers:
  - {id: low-confidence, lane: customer, when: "action.customer_facing && model.confidence < 0.72"}
  - {id: refund-over-limit, lane: financial, when: 'action.type == "refund" && action.amount > 250.0'}
)";

// The candidate lowers the refund limit to 100 and adds a policy lane.
constexpr char kCandidate[] = R"(version: 2
lanes:
  customer: {owner: support-lead, backup: support-manager, sla: 30m, verdict: HOLD}
  financial: {owner: finance-approver, backup: controller, sla: 4h, verdict: BLOCK}
  policy: {owner: workflow-owner, backup: ops-lead, sla: 2h, verdict: PARK_ITEM}
triggers:
  - {id: low-confidence, lane: customer, when: "action.customer_facing && model.confidence < 0.72"}
  - {id: refund-over-limit, lane: financial, when: 'action.type == "refund" && action.amount > 100.0'}
  - {id: discount, lane: policy, when: 'action.type == "discount"'}
)";

std::shared_ptr<const engine::Matrix> Matrix(const char* yaml) {
  absl::StatusOr<std::shared_ptr<const engine::Matrix>> m =
      engine::ParseMatrix(yaml, "m.yaml", nullptr);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *m : nullptr;
}

v1::EvaluateResponse Response(const std::string& text) {
  v1::EvaluateResponse r;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &r)) << text;
  return r;
}

v1::EvaluateRequest Request(const std::string& id) {
  v1::EvaluateRequest r;
  r.set_request_id(id);
  return r;
}

TEST(ShadowReportTest, CountsTransitionsTriggersAndCases) {
  ShadowReport report(Matrix(kLive), Matrix(kCandidate));
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  const v1::EvaluateResponse allow = Response("verdict: VERDICT_ALLOW");
  const v1::EvaluateResponse block_c1 = Response(
      "verdict: VERDICT_BLOCK lane: 'financial' case_id: 'c1' case_ids: 'c1' "
      "fired { trigger_id: 'refund-over-limit' lane: 'financial' }");
  const v1::EvaluateResponse block_c2 = Response(
      "verdict: VERDICT_BLOCK lane: 'financial' case_id: 'c2' case_ids: 'c2' "
      "fired { trigger_id: 'refund-over-limit' lane: 'financial' }");
  // Two lanes fired: case_ids follow the lanes in the order they first fired.
  const v1::EvaluateResponse two = Response(
      "verdict: VERDICT_BLOCK lane: 'financial' case_id: 'c4' case_ids: 'c3' case_ids: 'c4' "
      "fired { trigger_id: 'low-confidence' lane: 'customer' } "
      "fired { trigger_id: 'refund-over-limit' lane: 'financial' }");
  for (int i = 0; i < 5; ++i) {
    report.Add(Request(absl::StrCat("r", i)), t0 + absl::Minutes(i), &allow, &block_c1);
  }
  report.Add(Request("r5"), t0 + absl::Minutes(5), &block_c2, &block_c2);
  report.Add(Request("r6"), t0 + absl::Minutes(6), &allow, &two);
  report.Add(Request("r7"), t0 + absl::Minutes(30), &allow,
             absl::ResourceExhaustedError("the case store is full"));

  EXPECT_EQ(report.requests(), 8);
  EXPECT_EQ(report.changed(), 6);
  EXPECT_EQ(report.observed_span(), absl::Minutes(30));
  EXPECT_THAT(report.transitions(),
              ElementsAre(Pair(Pair(v1::VERDICT_ALLOW, v1::VERDICT_BLOCK), 6),
                          Pair(Pair(v1::VERDICT_BLOCK, v1::VERDICT_BLOCK), 1)));
  std::vector<ShadowReport::TriggerChange> top = report.TopTriggers(10);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].trigger_id, "refund-over-limit");
  EXPECT_EQ(top[0].newly_fires, 6);
  EXPECT_EQ(top[0].stops_firing, 0);
  EXPECT_THAT(top[0].samples, ElementsAre("r0", "r1", "r2"));
  EXPECT_EQ(top[1].trigger_id, "low-confidence");
  EXPECT_THAT(top[1].samples, ElementsAre("r6"));

  // Cases, not decisions: c1 five times is one escalation.
  std::vector<ShadowReport::LaneForecast> forecast = report.Forecast(absl::Minutes(30));
  ASSERT_EQ(forecast.size(), 3u);
  EXPECT_EQ(forecast[0].lane, "customer");
  EXPECT_EQ(forecast[0].escalations, 1);  // c3
  EXPECT_EQ(forecast[1].lane, "financial");
  EXPECT_EQ(forecast[1].owner, "finance-approver");
  EXPECT_EQ(forecast[1].live_escalations, 1);  // c2
  EXPECT_EQ(forecast[1].escalations, 3);       // c1, c2, c4
  EXPECT_DOUBLE_EQ(forecast[1].per_hour, 6.0);
  EXPECT_DOUBLE_EQ(forecast[1].review_hours_per_day, 6.0 * 24 * 4);
  EXPECT_EQ(forecast[2].lane, "policy");
  EXPECT_EQ(forecast[2].escalations, 0);
  EXPECT_DOUBLE_EQ(report.Forecast(absl::ZeroDuration())[1].per_hour, 0);

  const std::string text = report.Text(absl::Minutes(30));
  EXPECT_THAT(text, AllOf(HasSubstr("8 requests: 6 changed verdict (75.0%); refused: 0 live, 1 "
                                    "candidate"),
                          HasSubstr("\n  first refused by the candidate matrix: "
                                    "RESOURCE_EXHAUSTED: the case store is full\n"),
                          HasSubstr("ALLOW     -> BLOCK            6  e.g. r0, r1, r2\n"),
                          HasSubstr("BLOCK     -> BLOCK            1  (unchanged)"),
                          HasSubstr("refund-over-limit                +6 -0  e.g. r0, r1, r2"),
                          HasSubstr("no measured medians")));
  // A live report's span is measured to the nanosecond; it prints rounded.
  EXPECT_THAT(report.Text(absl::Seconds(7) + absl::Nanoseconds(16809332)),
              HasSubstr("workload forecast over 7s ("));
  EXPECT_THAT(report.Text(absl::Milliseconds(250) + absl::Microseconds(400)),
              HasSubstr("workload forecast over 250ms ("));
}

TEST(ShadowReportTest, JsonIsOneObjectWithTheDocumentedFields) {
  ShadowReport report(Matrix(kLive), Matrix(kCandidate));
  const v1::EvaluateResponse allow = Response("verdict: VERDICT_ALLOW");
  const v1::EvaluateResponse hold = Response(
      "verdict: VERDICT_HOLD lane: 'customer' case_ids: 'c1' "
      "fired { trigger_id: 'low-confidence' lane: 'customer' }");
  report.Add(Request("r\"1"), absl::UnixEpoch(), &allow, &hold);
  const std::string json = report.Json(absl::Hours(2));
  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok()) << json;
  const auto& f = parsed.fields();
  EXPECT_EQ(f.at("requests").number_value(), 1);
  EXPECT_EQ(f.at("changed").number_value(), 1);
  EXPECT_EQ(f.at("span_seconds").number_value(), 7200);
  const auto& transition = f.at("transitions").list_value().values(0).struct_value().fields();
  EXPECT_EQ(transition.at("live").string_value(), "VERDICT_ALLOW");
  EXPECT_EQ(transition.at("shadow").string_value(), "VERDICT_HOLD");
  EXPECT_EQ(transition.at("count").number_value(), 1);
  const auto& trigger = f.at("triggers").list_value().values(0).struct_value().fields();
  EXPECT_EQ(trigger.at("samples").list_value().values(0).string_value(), "r\"1");
  const auto& lane = f.at("forecast").list_value().values(0).struct_value().fields();
  EXPECT_EQ(lane.at("lane").string_value(), "customer");
  EXPECT_EQ(lane.at("owner").string_value(), "support-lead");
  EXPECT_EQ(lane.at("escalations").number_value(), 1);
  EXPECT_EQ(lane.at("per_hour").number_value(), 0.5);
  EXPECT_EQ(lane.at("review_hours_per_day").number_value(), 6);  // 0.5/h * 24h * 30m
}

TEST(OfflineShadowTest, EvaluatesEachLineAgainstBothMatrices) {
  std::istringstream in(
      "{\"request_id\":\"a\",\"tenant_id\":\"t\",\"item_id\":\"i1\","
      "\"action\":{\"type\":\"refund\",\"amount\":150}}\n"
      "\n"
      "{\"request_id\":\"b\",\"tenant_id\":\"t\",\"item_id\":\"i1\","
      "\"action\":{\"type\":\"refund\",\"amount\":150}}\n"
      "{\"requestId\":\"c\",\"tenantId\":\"t\",\"item_id\":\"i2\","
      "\"action\":{\"type\":\"refund\",\"amount\":300}}\n"
      "{\"request_id\":\"d\",\"action\":{\"type\":\"refund\",\"amount\":300}}\n");
  absl::StatusOr<ShadowReport> report =
      client::RunOfflineShadow(Matrix(kLive), Matrix(kCandidate), in, "r.jsonl", absl::Hours(1), 4);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->requests(), 4);
  EXPECT_EQ(report->changed(), 2);  // a and b: ALLOW -> BLOCK; c blocks on both
  std::vector<ShadowReport::LaneForecast> forecast = report->Forecast(absl::Hours(1));
  EXPECT_EQ(forecast[1].lane, "financial");
  EXPECT_EQ(forecast[1].live_escalations, 1);  // c
  EXPECT_EQ(forecast[1].escalations, 2);       // i1 (a, then b joins), i2
  EXPECT_THAT(report->Text(absl::Hours(1)), HasSubstr("refused: 1 live, 1 candidate"));  // d
}

TEST(OfflineShadowTest, ABadLineNamesFileAndLine) {
  std::istringstream in("{\"request_id\":\"a\",\"tenant_id\":\"t\"}\n{\"request_id\":\n");
  EXPECT_THAT(
      client::RunOfflineShadow(Matrix(kLive), Matrix(kCandidate), in, "r.jsonl", absl::Hours(1), 2),
      testing::StatusIs(absl::StatusCode::kInvalidArgument,
                        HasSubstr("r.jsonl:2: not an EvaluateRequest in JSON: ")));
}

}  // namespace
}  // namespace agate::service
