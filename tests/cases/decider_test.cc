// The one decision path: Decide counts, evaluates and settles, and a reload swaps the matrix for
// later requests only.
#include "cases/decider.h"

#include <memory>

#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fixtures.h"

namespace agate::cases {
namespace {

using ::testing::HasSubstr;

constexpr char kTieMatrix[] = R"yaml(
version: tie-1
lanes:
  first: {owner: o1, backup: b1, sla: 10m, verdict: PARK_ITEM, on_timeout: expire,
          evidence: [x], agent_action: park, operator_action: look}
triggers:
  - {id: always, lane: first, when: 'tenant_id != ""'}
)yaml";

TEST(DeciderTest, SetMatrixSwapsTheSnapshotForLaterRequests) {
  FakeClock clock;
  std::unique_ptr<Decider> decider = *Decider::Create(testing::BundledMatrix(), clock);
  absl::StatusOr<engine::Decision> before =
      decider->Decide(testing::MakeRequest("r1", testing::kAllow));
  ASSERT_TRUE(before.ok());
  decider->SetMatrix(testing::ParseMatrixOrFail(kTieMatrix));
  absl::StatusOr<engine::Decision> after =
      decider->Decide(testing::MakeRequest("r2", testing::kAllow));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(before->matrix->version(), "1");  // the old decision keeps its snapshot alive
  EXPECT_EQ(after->matrix->version(), "tie-1");
  EXPECT_EQ(after->verdict, v1::VERDICT_PARK_ITEM);
  EXPECT_THAT(after->case_id, HasSubstr("case_"));
}

TEST(DeciderTest, SignalsAreCountedBeforeTheMatrixReadsThem) {
  FakeClock clock;
  std::unique_ptr<Decider> decider = *Decider::Create(testing::BundledMatrix(), clock);
  // Three retries, then one more: count("retry", "10m") > 3 fires on the request that reports
  // the fourth.
  ASSERT_EQ(
      decider->Decide(testing::MakeRequest("r1", "signals { key: 'retry' value: 3 }"))->verdict,
      v1::VERDICT_ALLOW);
  absl::StatusOr<engine::Decision> d =
      decider->Decide(testing::MakeRequest("r2", "signals { key: 'retry' value: 1 }"));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->verdict, v1::VERDICT_SAFE_MODE);
  EXPECT_EQ(decider->signals().keys(), 1u);
}

TEST(DeciderTest, AFullCaseStoreIsAnErrorNotAVerdict) {
  FakeClock clock;
  std::unique_ptr<Decider> decider =
      *Decider::Create(testing::BundledMatrix(), clock, {.cases = {.max_open_cases = 0}});
  absl::StatusOr<engine::Decision> d = decider->Decide(testing::MakeRequest("r1", testing::kHold));
  EXPECT_EQ(d.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(decider->Decide(testing::MakeRequest("r2", testing::kAllow))->verdict,
            v1::VERDICT_ALLOW);
}

}  // namespace
}  // namespace agate::cases
