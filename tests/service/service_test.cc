// The Service in memory: the decision path end to end without gRPC, and the one counter list.
#include "service/service.h"

#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fixtures.h"
#include "tests/testing/status_matchers.h"

namespace agate::service {
namespace {

using ::testing::HasSubstr;
using testing::StatusIs;

// Value returns the sample named name with these labels (a test failure if absent).
double Value(const std::vector<MetricSample>& samples, const std::string& name,
             std::vector<std::pair<std::string, std::string>> labels = {}) {
  for (const MetricSample& s : samples) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  ADD_FAILURE() << "no sample " << name;
  return -1;
}

class ServiceTest : public ::testing::Test {
 protected:
  ServiceTest() : service_(*Service::Create(testing::BundledMatrix(), clock_)) {}

  v1::EvaluateResponse Evaluate(const engine::Request& request) {
    v1::EvaluateResponse response;
    EXPECT_TRUE(service_->Evaluate(request, &response).ok());
    return response;
  }

  FakeClock clock_;
  std::unique_ptr<Service> service_;
};

TEST_F(ServiceTest, CountsDecisionsByVerdictRedemptionsAndErrors) {
  Evaluate(testing::MakeRequest("a1", testing::kAllow));
  Evaluate(testing::MakeRequest("a2", testing::kAllow));
  const std::string id = Evaluate(testing::MakeRequest("b1", testing::kBlock)).case_id();
  EXPECT_GT(Value(service_->Metrics(), "agate_open_case_bytes"), 1000);
  ASSERT_TRUE(service_
                  ->Acknowledge({.case_id = id,
                                 .decision = v1::DECISION_APPROVE,
                                 .actor = cases::Actor::Unverified("finance-approver")})
                  .ok());
  engine::Request redeem = testing::MakeRequest("b2", testing::kBlock);
  redeem.mutable_approval()->set_case_id(id);
  EXPECT_EQ(Evaluate(redeem).verdict(), v1::VERDICT_ALLOW);
  v1::EvaluateResponse unused;
  EXPECT_THAT(service_->Evaluate(testing::MakeRequest("bad", "model { confidence: 2 }"), &unused),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("model.confidence")));

  const std::vector<MetricSample> m = service_->Metrics();
  EXPECT_EQ(Value(m, "agate_decisions_total", {{"verdict", "ALLOW"}}), 3);  // a redemption too
  EXPECT_EQ(Value(m, "agate_decisions_total", {{"verdict", "BLOCK"}}), 1);
  EXPECT_EQ(Value(m, "agate_decisions_total", {{"verdict", "DENY"}}), 0);
  EXPECT_EQ(Value(m, "agate_redemptions_total"), 1);
  EXPECT_EQ(Value(m, "agate_evaluate_errors_total"), 1);
  EXPECT_EQ(Value(m, "agate_open_cases"), 0);
  EXPECT_EQ(Value(m, "agate_open_case_bytes"), 0);
  EXPECT_EQ(Value(m, "agate_matrix_info", {{"version", "1"}}), 1);

  const v1::GetStatsResponse stats = service_->Stats();
  EXPECT_EQ(stats.decisions().at("ALLOW"), 3u);
  EXPECT_EQ(stats.decisions().at("BLOCK"), 1u);
  EXPECT_EQ(stats.metrics_size(), static_cast<int>(m.size()));
}

TEST_F(ServiceTest, EveryMetricHasOneTypeAHelpAndUniqueLabels) {
  std::map<std::string, MetricType> types;
  std::set<std::string> series;
  for (const MetricSample& s : service_->Metrics()) {
    EXPECT_FALSE(s.help.empty()) << s.name;
    EXPECT_TRUE(s.name.rfind("agate_", 0) == 0) << s.name;
    if (s.type == MetricType::kCounter) {
      EXPECT_TRUE(s.name.size() > 6 && s.name.substr(s.name.size() - 6) == "_total") << s.name;
    }
    auto [it, inserted] = types.emplace(s.name, s.type);
    EXPECT_TRUE(inserted || it->second == s.type) << s.name;
    std::string key = s.name;
    for (const auto& [k, v] : s.labels) absl::StrAppend(&key, ",", k, "=", v);
    EXPECT_TRUE(series.insert(key).second) << "duplicate series " << key;
  }
}

TEST_F(ServiceTest, AReplayIsTheSameDecisionMarkedReplayed) {
  const v1::EvaluateResponse first = Evaluate(testing::MakeRequest("r1", testing::kHold));
  const v1::EvaluateResponse again = Evaluate(testing::MakeRequest("r1", testing::kHold));
  EXPECT_TRUE(again.replayed());
  EXPECT_EQ(again.decision_id(), first.decision_id());
  EXPECT_EQ(again.case_id(), first.case_id());
  EXPECT_EQ(service_->cases().open_cases(), 1u);
}

TEST_F(ServiceTest, TheSameBytesAgainAreReplayedWithoutAParse) {
  const engine::Request request = testing::MakeRequest("r1", testing::kHold);
  const std::string bytes = request.SerializeAsString();
  WireRequest wire;
  ASSERT_TRUE(WireRequest::Scan(bytes, &wire));
  std::string replayed;
  EXPECT_FALSE(service_->Replay(wire, &replayed));  // not decided yet
  v1::EvaluateResponse first;
  ASSERT_TRUE(service_->Evaluate(request, &first, nullptr, "", &wire).ok());
  ASSERT_TRUE(service_->Replay(wire, &replayed));
  v1::EvaluateResponse again;
  ASSERT_TRUE(again.ParseFromString(replayed));
  EXPECT_TRUE(again.replayed());
  EXPECT_EQ(again.decision_id(), first.decision_id());
  EXPECT_EQ(again.case_id(), first.case_id());

  // The same contents in other bytes (an unknown field added) are not a byte-for-byte retry:
  // Replay leaves them to Evaluate, which still replays them by their contents.
  const std::string other_bytes = bytes + std::string("\xf8\x3f\x01", 3);  // field 1023
  WireRequest other;
  ASSERT_TRUE(WireRequest::Scan(other_bytes, &other));
  EXPECT_EQ(other.request_id, wire.request_id);
  EXPECT_FALSE(service_->Replay(other, &replayed));
  EXPECT_TRUE(Evaluate(request).replayed());
  // Other contents under the same request_id: Replay does not answer, Evaluate refuses.
  engine::Request changed = request;
  changed.set_item_id("another-item");
  const std::string changed_bytes = changed.SerializeAsString();
  ASSERT_TRUE(WireRequest::Scan(changed_bytes, &other));
  EXPECT_FALSE(service_->Replay(other, &replayed));
  v1::EvaluateResponse refused;
  EXPECT_THAT(service_->Evaluate(changed, &refused, nullptr, "", &other),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("request_id")));
  EXPECT_EQ(service_->cases().open_cases(), 1u);
}

TEST(ServiceWithoutIdempotencyTest, ReplaysNothing) {
  FakeClock clock;
  std::unique_ptr<Service> service =
      *Service::Create(testing::BundledMatrix(), clock, {.idempotency = {.enabled = false}});
  const engine::Request request = testing::MakeRequest("r1", testing::kHold);
  const std::string bytes = request.SerializeAsString();
  WireRequest wire;
  ASSERT_TRUE(WireRequest::Scan(bytes, &wire));
  v1::EvaluateResponse response;
  ASSERT_TRUE(service->Evaluate(request, &response, nullptr, "", &wire).ok());
  std::string replayed;
  EXPECT_FALSE(service->Replay(wire, &replayed));
}

}  // namespace
}  // namespace agate::service
