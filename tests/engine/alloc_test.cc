// Counts heap allocations on the engine's ALLOW path (tests/testing/counting_new.h).
#include "cases/decider.h"
#include "common/clock.h"
#include "engine/evaluator.h"
#include "engine/matrix.h"
#include "gtest/gtest.h"
#include "tests/testing/counting_new.h"

namespace agate::engine {
namespace {

class AllocationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::shared_ptr<const Matrix>> m =
        LoadMatrixFile(AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml", nullptr);
    ASSERT_TRUE(m.ok()) << m.status();
    matrix_ = *m;
    allow_.set_request_id("req-1");
    allow_.set_tenant_id("t1");
    allow_.set_workflow_id("support");
    allow_.set_item_id("ticket-1");
    allow_.mutable_action()->set_type("send_reply");
    allow_.mutable_action()->set_customer_facing(true);
    allow_.mutable_action()->set_target_tenant_id("t1");
    allow_.mutable_action()->add_requested_scopes("tickets:write");
    allow_.mutable_model()->set_confidence(0.93);
    allow_.mutable_model()->set_sentiment("neutral");
    (*allow_.mutable_signals())["retry"] = 1;
    (*allow_.mutable_attributes()->mutable_fields())["discount_pct"].set_number_value(5);
    // Warm up once: one-time initialisation (random seed, RE2 caches) is not per-request cost.
    (void)Evaluate(matrix_, allow_, clock_.Now());
  }

  long AllocationsOf(const Request& request, int iterations) {
    const long before = testing::Allocations();
    for (int i = 0; i < iterations; ++i) {
      Decision d = Evaluate(matrix_, request, clock_.Now());
      if (d.id.view().empty()) return -1;
    }
    return testing::Allocations() - before;
  }

  FakeClock clock_;
  std::shared_ptr<const Matrix> matrix_;
  Request allow_;
};

TEST_F(AllocationTest, AllowPathOnTheBundledMatrixAllocatesNothing) {
  Decision d = Evaluate(matrix_, allow_, clock_.Now());
  ASSERT_EQ(d.verdict, v1::VERDICT_ALLOW);
  EXPECT_EQ(AllocationsOf(allow_, 1000), 0);
}

TEST_F(AllocationTest, TheWholeDecisionPathAllocatesNothingOnAllow) {
  // What the server runs per request: Decide = count the signals, evaluate (count() through the
  // sliding-window counter), settle against the cases (nothing in force: the lock-free path).
  std::unique_ptr<cases::Decider> decider = *cases::Decider::Create(matrix_, clock_);
  Request quiet = allow_;
  quiet.clear_signals();
  ASSERT_TRUE(decider->Decide(allow_).ok());  // a key exists for this tenant and workflow
  absl::StatusOr<Decision> warm = decider->Decide(quiet);
  ASSERT_TRUE(warm.ok());
  ASSERT_EQ(warm->verdict, v1::VERDICT_ALLOW);
  const long before = testing::Allocations();
  for (int i = 0; i < 1000; ++i) {
    absl::StatusOr<Decision> d = decider->Decide(quiet);
    if (!d.ok()) FAIL();
  }
  EXPECT_EQ(testing::Allocations() - before, 0);
}

TEST_F(AllocationTest, CounterSeesTheAllocationsOfAnEscalation) {
  // Guards the test above: the counter must observe allocations when the engine makes them.
  Request hold = allow_;
  hold.mutable_model()->set_confidence(0.5);
  ASSERT_EQ(Evaluate(matrix_, hold, clock_.Now()).verdict, v1::VERDICT_HOLD);
  EXPECT_GT(AllocationsOf(hold, 10), 0);
}

}  // namespace
}  // namespace agate::engine
