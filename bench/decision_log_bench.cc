// Decision log micro-benchmarks: the record body built per decision (ALLOW path) and Append.
//
//   build/bench/decision_log_bench --benchmark_repetitions=5
//   --benchmark_report_aggregates_only=true
//
// BM_AppendAsync is the caller's cost (a short lock and a queue push); BM_AppendAndFlush/N is
// the writer's throughput (numbering, SHA-256, write(2)) for batches of N records.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "store/decision_log.h"
#include "store/decision_record.h"

namespace agate::store {
namespace {

v1::EvaluateRequest Request() {
  v1::EvaluateRequest r;
  r.set_request_id("req-7f3a9c2e-41b8-4d0e-9b1a-5c6d7e8f9a0b");
  r.set_tenant_id("acme");
  r.set_workflow_id("support");
  r.set_item_id("ticket-1");
  r.mutable_action()->set_type("send_reply");
  r.mutable_action()->set_customer_facing(true);
  r.mutable_model()->set_confidence(0.93);
  return r;
}

v1::EvaluateResponse AllowResponse() {
  v1::EvaluateResponse r;
  r.set_decision_id("01M871D531XSD7ZVR000000000");
  r.set_verdict(v1::VERDICT_ALLOW);
  r.set_matrix_version("3");
  return r;
}

v1::EvaluateResponse BlockResponse() {
  v1::EvaluateResponse r = AllowResponse();
  r.set_verdict(v1::VERDICT_BLOCK);
  r.set_lane("financial");
  r.add_case_ids("case_01M871CXAT469PJ0G000000001");
  v1::FiredTrigger* f = r.add_fired();
  f->set_trigger_id("refund-over-limit");
  f->set_lane("financial");
  v1::ObservedValue* v = f->add_values();
  v->set_field("action.type");
  v->mutable_value()->set_string_value("refund");
  v = f->add_values();
  v->set_field("action.amount");
  v->mutable_value()->set_number_value(400);
  return r;
}

constexpr char kDigest[] = "9f2c4e1a7b3d5f60812a4c6e8f0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b";

void BM_DecisionRecordBodyAllow(benchmark::State& state) {
  const v1::EvaluateRequest request = Request();
  const v1::EvaluateResponse response = AllowResponse();
  const absl::Time now = absl::Now();
  for (auto _ : state) {
    std::string body = DecisionRecordBody(request, response, kDigest, now);
    benchmark::DoNotOptimize(body);
  }
}
BENCHMARK(BM_DecisionRecordBodyAllow);

void BM_DecisionRecordBodyBlock(benchmark::State& state) {
  const v1::EvaluateRequest request = Request();
  const v1::EvaluateResponse response = BlockResponse();
  const absl::Time now = absl::Now();
  for (auto _ : state) {
    std::string body = DecisionRecordBody(request, response, kDigest, now);
    benchmark::DoNotOptimize(body);
  }
}
BENCHMARK(BM_DecisionRecordBodyBlock);

// TempLog opens a log in a fresh directory and removes it afterwards.
struct TempLog {
  TempLog() {
    dir = (std::filesystem::temp_directory_path() /
           absl::StrCat("agate_decision_log_bench_", absl::ToUnixNanos(absl::Now())))
              .string();
    auto opened = DecisionLog::Open({.dir = dir});
    if (!opened.ok()) std::abort();
    log = *std::move(opened);
  }
  ~TempLog() {
    log.reset();
    std::filesystem::remove_all(dir);
  }
  std::string dir;
  std::unique_ptr<DecisionLog> log;
};

std::string AllowBody() {
  return DecisionRecordBody(Request(), AllowResponse(), kDigest, absl::Now());
}

// The caller's cost of an async Append: 1,000 appends per iteration, then (untimed) a Flush, so
// the queue stays short and the writer does not compete for the lock while the clock runs.
void BM_AppendAsync(benchmark::State& state) {
  TempLog temp;
  const std::string body = AllowBody();
  std::vector<std::string> bodies(1000);
  for (auto _ : state) {
    state.PauseTiming();
    for (std::string& b : bodies) b = body;  // the server hands over the body it built
    state.ResumeTiming();
    for (std::string& b : bodies) {
      benchmark::DoNotOptimize(temp.log->Append(std::move(b), /*sync=*/false));
    }
    state.PauseTiming();
    if (!temp.log->Flush().ok()) state.SkipWithError("flush failed");
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(bodies.size()));
}
BENCHMARK(BM_AppendAsync);

void BM_AppendAndFlush(benchmark::State& state) {
  TempLog temp;
  const std::string body = AllowBody();
  const int batch = static_cast<int>(state.range(0));
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) temp.log->Append(body, /*sync=*/false).IgnoreError();
    if (!temp.log->Flush().ok()) state.SkipWithError("flush failed");
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetBytesProcessed(static_cast<int64_t>(temp.log->stats().bytes));
}
BENCHMARK(BM_AppendAndFlush)->Arg(1)->Arg(1000)->UseRealTime();

}  // namespace
}  // namespace agate::store
