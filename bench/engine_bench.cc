// Engine micro-benchmarks: Evaluate on the bundled matrix, no network.
//
//   build/bench/engine_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Numbers and the machine they were measured on are in docs/perf.md.
#include <memory>

#include "benchmark/benchmark.h"
#include "engine/evaluator.h"
#include "engine/matrix.h"

namespace agate::engine {
namespace {

std::shared_ptr<const Matrix> Bundled() {
  static const std::shared_ptr<const Matrix> kMatrix = [] {
    auto m = LoadMatrixFile(AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml", nullptr);
    if (!m.ok()) std::abort();
    return *m;
  }();
  return kMatrix;
}

Request AllowRequest() {
  Request r;
  r.set_request_id("req-1");
  r.set_tenant_id("t1");
  r.set_workflow_id("support");
  r.set_item_id("ticket-1");
  r.mutable_action()->set_type("send_reply");
  r.mutable_action()->set_customer_facing(true);
  r.mutable_action()->set_target_tenant_id("t1");
  r.mutable_model()->set_confidence(0.93);
  r.mutable_model()->set_sentiment("neutral");
  return r;
}

void BM_EvaluateAllow(benchmark::State& state) {
  Evaluator evaluator(Bundled());
  const Request request = AllowRequest();
  for (auto _ : state) {
    Decision d = evaluator.Evaluate(request);
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_EvaluateAllow);

// Fires customer (low confidence), policy (discount 35%) and financial (irreversible, $300).
void BM_EvaluateThreeLanes(benchmark::State& state) {
  Evaluator evaluator(Bundled());
  Request request = AllowRequest();
  request.mutable_model()->set_confidence(0.5);
  request.mutable_action()->set_type("discount");
  request.mutable_action()->set_irreversible(true);
  request.mutable_action()->set_amount(300);
  (*request.mutable_attributes()->mutable_fields())["discount_pct"].set_number_value(35);
  if (evaluator.Evaluate(request).fired.size() != 3) {
    state.SkipWithError("request does not fire three lanes");
    return;
  }
  for (auto _ : state) {
    Decision d = evaluator.Evaluate(request);
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_EvaluateThreeLanes);

void BM_LoadBundledMatrix(benchmark::State& state) {
  for (auto _ : state) {
    auto m = LoadMatrixFile(AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml", nullptr);
    benchmark::DoNotOptimize(m);
  }
}
BENCHMARK(BM_LoadBundledMatrix);

}  // namespace
}  // namespace agate::engine
