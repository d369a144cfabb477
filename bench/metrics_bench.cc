// What a /metrics scrape costs the server: Service::Metrics() and RenderPrometheus with 10,000
// open cases and a matrix of 1,000 triggers (every one has fired), the size issue 18 sets a 10 ms
// target for.
//
//   build/bench/metrics_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//
// The matrix: the bundled example's five lanes and 1,000 triggers `action.type == "tN"`, N in
// [0, 1000), in its three per-item lanes in turn; the cases: 10,000 requests of types t0..t999 on
// 10,000 items (10 per trigger), kept in memory. Numbers are in docs/perf.md.
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "engine/matrix.h"
#include "server/http_api.h"
#include "service/service.h"

namespace agate {
namespace {

constexpr int kTriggers = 1'000;
constexpr int kCases = 10'000;

std::shared_ptr<const engine::Matrix> BigMatrix() {
  std::ifstream in(AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml");
  std::stringstream text;
  text << in.rdbuf();
  std::string yaml = text.str();
  yaml = yaml.substr(0, yaml.find("\ntriggers:"));
  // The lanes whose cases are per item (ops and security join per workflow and credential).
  const char* kLanes[] = {"customer", "policy", "financial"};
  absl::StrAppend(&yaml, "\ntriggers:\n");
  for (int i = 0; i < kTriggers; ++i) {
    absl::StrAppend(&yaml, "  - id: trigger-", i, "\n    lane: ", kLanes[i % 3],
                    "\n    when: action.type == \"t", i, "\"\n");
  }
  absl::StatusOr<std::shared_ptr<const engine::Matrix>> matrix =
      engine::ParseMatrix(yaml, "big.yaml", nullptr);
  if (!matrix.ok()) {
    std::cerr << matrix.status() << "\n";
    std::abort();
  }
  return *matrix;
}

service::Service& Loaded() {
  static service::Service* const kService = [] {
    service::ServiceOptions options;
    options.decider.cases.max_open_cases = 1'000'000;
    options.decider.cases.max_open_cases_per_tenant = 0;
    auto service = service::Service::Create(BigMatrix(), RealClock(), options);
    if (!service.ok()) std::abort();
    for (int n = 0; n < kCases; ++n) {
      v1::EvaluateRequest r;
      r.set_request_id(absl::StrCat("r", n));
      r.set_tenant_id(absl::StrCat("tenant-", n % 50));
      r.set_workflow_id("w");
      r.set_item_id(absl::StrCat("item-", n));
      r.mutable_action()->set_type(absl::StrCat("t", n % kTriggers));
      r.mutable_model()->set_confidence(0.99);
      v1::EvaluateResponse response;
      if (absl::Status s = (*service)->Evaluate(r, &response); !s.ok()) {
        std::cerr << s << "\n";
        std::abort();
      }
    }
    if ((*service)->cases().open_cases() != static_cast<size_t>(kCases)) {
      std::cerr << (*service)->cases().open_cases() << " cases open, not " << kCases << "\n";
      std::abort();
    }
    return service->release();
  }();
  return *kService;
}

void BM_MetricsScrape(benchmark::State& state) {
  service::Service& service = Loaded();
  size_t bytes = 0;
  for (auto _ : state) {
    const std::string text = server::RenderPrometheus(service.Metrics());
    bytes = text.size();
    benchmark::DoNotOptimize(text);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_MetricsScrape)->Unit(benchmark::kMillisecond);

void BM_MetricsSamples(benchmark::State& state) {
  service::Service& service = Loaded();
  for (auto _ : state) benchmark::DoNotOptimize(service.Metrics());
}
BENCHMARK(BM_MetricsSamples)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace agate
