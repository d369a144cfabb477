// Case store benchmarks with 100,000 open cases: what a ListCases call costs (it holds the store's
// lock for all of it, and every escalation waits for that lock) and what opening one more case
// costs beside them.
//
//   build/bench/case_store_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//
// The store: 100,000 OPEN cases of the customer lane (HOLD), 99,000 of tenant "big" and 1,000 of
// tenant "small", then 100 of the financial lane (BLOCK). Numbers are in docs/perf.md.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "cases/decider.h"
#include "common/clock.h"
#include "engine/matrix.h"

namespace agate::cases {
namespace {

constexpr int kOpen = 100'000;
constexpr int kSmall = 1'000;
constexpr int kFinancial = 100;

engine::Request Hold(int n, const std::string& tenant) {
  engine::Request r;
  r.set_request_id(absl::StrCat("r", n));
  r.set_tenant_id(tenant);
  r.set_workflow_id("support");
  r.set_item_id(absl::StrCat("item-", n));
  r.mutable_action()->set_type("send_reply");
  r.mutable_action()->set_customer_facing(true);
  r.mutable_model()->set_confidence(0.5);
  return r;
}

engine::Request Block(int n) {
  engine::Request r = Hold(n, "big");
  r.mutable_action()->set_type("refund");
  r.mutable_action()->set_customer_facing(false);
  r.mutable_action()->set_amount(300);
  r.mutable_model()->set_confidence(0.95);
  return r;
}

Decider& Store() {
  static Decider* const kDecider = [] {
    auto matrix =
        engine::LoadMatrixFile(AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml", nullptr);
    if (!matrix.ok()) std::abort();
    auto decider =
        Decider::Create(*matrix, RealClock(),
                        {.cases = {.max_open_cases = 10'000'000, .max_open_cases_per_tenant = 0}});
    if (!decider.ok()) std::abort();
    for (int n = 0; n < kOpen; ++n) {
      if (!(*decider)->Decide(Hold(n, n % (kOpen / kSmall) == 0 ? "small" : "big")).ok()) {
        std::abort();
      }
    }
    for (int n = 0; n < kFinancial; ++n) {
      if (!(*decider)->Decide(Block(kOpen + n)).ok()) std::abort();
    }
    return decider->release();
  }();
  return *kDecider;
}

// Arg: 0 no filter; 1 state OPEN and tenant small (1% of the cases); 2 the financial lane (0.1%);
// 3 an owner nobody has (the index cannot help: the examined bound applies); 4 as 1, pages of
// 1,000.
void BM_ListCases(benchmark::State& state) {
  CaseStore& store = Store().cases();
  v1::ListCasesRequest request;
  switch (state.range(0)) {
    case 1:
      request.set_state(v1::CASE_STATE_OPEN);
      request.set_tenant_id("small");
      break;
    case 2:
      request.set_lane("financial");
      break;
    case 3:
      request.set_owner("nobody");
      break;
    case 4:
      request.set_state(v1::CASE_STATE_OPEN);
      request.set_tenant_id("small");
      request.set_page_size(1000);
      break;
  }
  int listed = 0;
  for (auto _ : state) {
    absl::StatusOr<v1::ListCasesResponse> page = store.List(request);
    if (!page.ok()) std::abort();
    listed = page->cases_size();
    benchmark::DoNotOptimize(page);
  }
  state.counters["listed"] = listed;
}
BENCHMARK(BM_ListCases)->Arg(0)->Arg(1)->Arg(2)->Arg(3)->Arg(4);

// A decision that opens a case (a new item each time) beside the 100,000 open ones.
void BM_DecideOpensACase(benchmark::State& state) {
  Decider& decider = Store();
  static int n = 10'000'000;
  for (auto _ : state) {
    absl::StatusOr<engine::Decision> d = decider.Decide(Hold(++n, "big"));
    if (!d.ok()) std::abort();
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_DecideOpensACase);

// The same while Arg threads list in a loop: the open cases of tenant small, pages of 1,000 (a scan
// of all 100,000 without the index). Counters: the decision's p50 and p99 in microseconds.
void BM_DecideWhileListing(benchmark::State& state) {
  Decider& decider = Store();
  std::atomic<bool> stop{false};
  std::vector<std::thread> scanners;
  for (int i = 0; i < state.range(0); ++i) {
    scanners.emplace_back([&] {
      v1::ListCasesRequest request;
      request.set_state(v1::CASE_STATE_OPEN);
      request.set_tenant_id("small");
      request.set_page_size(1000);
      while (!stop.load()) benchmark::DoNotOptimize(decider.cases().List(request));
    });
  }
  static int n = 20'000'000;
  std::vector<double> micros;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<engine::Decision> d = decider.Decide(Hold(++n, "big"));
    micros.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count());
    if (!d.ok()) std::abort();
  }
  stop.store(true);
  for (std::thread& t : scanners) t.join();
  std::sort(micros.begin(), micros.end());
  state.counters["p50_us"] = micros[micros.size() / 2];
  state.counters["p99_us"] = micros[micros.size() * 99 / 100];
}
BENCHMARK(BM_DecideWhileListing)->Arg(0)->Arg(1)->Arg(2)->Iterations(5000)->UseRealTime();

}  // namespace
}  // namespace agate::cases
