// Counts heap allocations on the engine's ALLOW path with a replaced global operator new.
// A count is deterministic where a time is not: the ALLOW path must allocate nothing.
#include <atomic>
#include <cstdlib>
#include <new>

#include "engine/case_store.h"
#include "engine/evaluator.h"
#include "engine/matrix.h"
#include "engine/signal_counter.h"
#include "gtest/gtest.h"

namespace {
std::atomic<long> g_allocations{0};

void* CountedAlloc(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t size) { return CountedAlloc(size); }
void* operator new[](std::size_t size) { return CountedAlloc(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size == 0 ? 1 : size);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size == 0 ? 1 : size);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace agate::engine {
namespace {

class AllocationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::shared_ptr<const Matrix>> m =
        LoadMatrixFile(AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml", nullptr);
    ASSERT_TRUE(m.ok()) << m.status();
    evaluator_ = std::make_unique<Evaluator>(*m, clock_);
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
    (void)evaluator_->Evaluate(allow_);
  }

  long AllocationsOf(const Request& request, int iterations) {
    const long before = g_allocations.load();
    for (int i = 0; i < iterations; ++i) {
      Decision d = evaluator_->Evaluate(request);
      if (d.id.view().empty()) return -1;
    }
    return g_allocations.load() - before;
  }

  FakeClock clock_;
  std::unique_ptr<Evaluator> evaluator_;
  Request allow_;
};

TEST_F(AllocationTest, AllowPathOnTheBundledMatrixAllocatesNothing) {
  Decision d = evaluator_->Evaluate(allow_);
  ASSERT_EQ(d.verdict, v1::VERDICT_ALLOW);
  EXPECT_EQ(AllocationsOf(allow_, 1000), 0);
}

TEST_F(AllocationTest, AllowPathWithTheSignalCounterAndCaseStoreAllocatesNothing) {
  // What the server runs per request: count() through the sliding-window counter, then the case
  // store (nothing in force: the lock-free path).
  SlidingWindowCounter counter(clock_);
  CaseStore cases(clock_);
  Evaluator evaluator(evaluator_->matrix(), clock_, &counter);
  Request quiet = allow_;
  quiet.clear_signals();
  counter.Record(allow_);  // a key exists for this tenant and workflow
  v1::EvaluateResponse response;
  Decision warm = evaluator.Evaluate(quiet);
  ASSERT_EQ(warm.verdict, v1::VERDICT_ALLOW);
  ASSERT_TRUE(cases.Apply(quiet, warm, &response).ok());
  const long before = g_allocations.load();
  for (int i = 0; i < 1000; ++i) {
    counter.Record(quiet);  // no signals: nothing to record
    Decision d = evaluator.Evaluate(quiet);
    if (!cases.Apply(quiet, d, &response).ok()) FAIL();
  }
  EXPECT_EQ(g_allocations.load() - before, 0);
}

TEST_F(AllocationTest, CounterSeesTheAllocationsOfAnEscalation) {
  // Guards the test above: the counter must observe allocations when the engine makes them.
  Request hold = allow_;
  hold.mutable_model()->set_confidence(0.5);
  ASSERT_EQ(evaluator_->Evaluate(hold).verdict, v1::VERDICT_HOLD);
  EXPECT_GT(AllocationsOf(hold, 10), 0);
}

}  // namespace
}  // namespace agate::engine
