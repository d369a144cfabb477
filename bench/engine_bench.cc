// Engine micro-benchmarks: Evaluate on the bundled matrix, no network.
//
//   build/bench/engine_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Numbers and the machine they were measured on are in docs/perf.md.
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "cases/decider.h"
#include "cases/signal_counter.h"
#include "engine/evaluator.h"
#include "engine/matrix.h"
#include "service/idempotency.h"
#include "service/service.h"
#include "store/sqlite_store.h"

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
  const std::shared_ptr<const Matrix> matrix = Bundled();
  const Request request = AllowRequest();
  for (auto _ : state) {
    Decision d = Evaluate(matrix, request, RealClock().Now());
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_EvaluateAllow);

// Fires customer (low confidence), policy (discount 35%) and financial (irreversible, $300).
void BM_EvaluateThreeLanes(benchmark::State& state) {
  const std::shared_ptr<const Matrix> matrix = Bundled();
  Request request = AllowRequest();
  request.mutable_model()->set_confidence(0.5);
  request.mutable_action()->set_type("discount");
  request.mutable_action()->set_irreversible(true);
  request.mutable_action()->set_amount(300);
  (*request.mutable_attributes()->mutable_fields())["discount_pct"].set_number_value(35);
  if (Evaluate(matrix, request, RealClock().Now()).fired.size() != 3) {
    state.SkipWithError("request does not fire three lanes");
    return;
  }
  for (auto _ : state) {
    Decision d = Evaluate(matrix, request, RealClock().Now());
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_EvaluateThreeLanes);

// The engine as the server runs it: count() reads the sliding-window counter.
void BM_EvaluateAllowWithSignalCounter(benchmark::State& state) {
  cases::SlidingWindowCounter counter(RealClock());
  const std::shared_ptr<const Matrix> matrix = Bundled();
  const Request request = AllowRequest();
  for (auto _ : state) {
    Decision d = Evaluate(matrix, request, RealClock().Now(), {.counter = &counter});
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_EvaluateAllowWithSignalCounter);

// The whole decision path (cases/decider.h) for an ALLOW: count the signals, evaluate, settle
// against the cases (nothing open).
void BM_DecideAllow(benchmark::State& state) {
  std::unique_ptr<cases::Decider> decider = *cases::Decider::Create(Bundled(), RealClock());
  const Request request = AllowRequest();
  for (auto _ : state) {
    absl::StatusOr<Decision> d = decider->Decide(request);
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_DecideAllow);

// The idempotency path's parts, to see where the Service's time over the bare engine goes: the
// key and the request digest (deterministic serialization + SHA-256) ...
void BM_IdempotencyKeyAndDigest(benchmark::State& state) {
  const Request request = AllowRequest();
  for (auto _ : state) {
    std::string key = service::IdempotencyKey(request);
    std::string digest = service::RequestDigest(request);
    benchmark::DoNotOptimize(key);
    benchmark::DoNotOptimize(digest);
  }
}
BENCHMARK(BM_IdempotencyKeyAndDigest);

// TailCounters times each iteration and reports the slowest ones as counters (p99_ns, p999_ns,
// max_ns): a stall in one call of a hundred hides in a mean but is a request's p99.
class TailCounters {
 public:
  TailCounters() { ns_.reserve(1 << 22); }
  void Start() { start_ = std::chrono::steady_clock::now(); }
  // Stop records the time since Start and returns it, in seconds (for SetIterationTime).
  double Stop() {
    const auto elapsed = std::chrono::steady_clock::now() - start_;
    if (ns_.size() < ns_.capacity()) {
      ns_.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count());
    }
    return std::chrono::duration<double>(elapsed).count();
  }
  void Report(benchmark::State& state) {
    if (ns_.empty()) return;
    std::sort(ns_.begin(), ns_.end());
    auto at = [&](double q) {
      return static_cast<double>(ns_[static_cast<size_t>(q * (ns_.size() - 1))]);
    };
    state.counters["p99_ns"] = at(0.99);
    state.counters["p999_ns"] = at(0.999);
    state.counters["max_ns"] = static_cast<double>(ns_.back());
  }

 private:
  std::chrono::steady_clock::time_point start_;
  std::vector<int64_t> ns_;
};

// ... and a miss then an insert of a new ALLOW into a cache already holding its 200,000 entries
// (the server's steady state: every insert reuses the oldest slot), with the tail of the calls.
// With range(0) > 0 the calls are paced range(0) µs apart, as one client's requests are: the
// pages between them go cold (the time asleep is not counted; 50,000 calls, ~6 s).
void BM_IdempotencyFindInsertFull(benchmark::State& state) {
  const auto pause = std::chrono::microseconds(state.range(0));
  std::unique_ptr<service::IdempotencyCache> owned =
      *service::IdempotencyCache::Create(RealClock());
  service::IdempotencyCache& cache = *owned;
  Request request = AllowRequest();
  v1::EvaluateResponse response;
  response.set_verdict(v1::VERDICT_ALLOW);
  response.set_decision_id("01M8NRM5G0F1RX818000000001");
  response.set_matrix_version("1");
  const std::string bytes = response.SerializeAsString();
  const std::string digest = service::RequestDigest(request);
  std::string found;
  uint64_t n = 0;
  auto next_key = [&] { return absl::StrCat("t1", absl::string_view("\0", 1), "bench-", ++n); };
  for (int i = 0; i < 200'000; ++i) cache.Insert(next_key(), digest, bytes, absl::Now());
  TailCounters tail;
  for (auto _ : state) {
    if (pause.count() > 0) std::this_thread::sleep_for(pause);
    const std::string key = next_key();
    tail.Start();
    if (cache.Find(key, digest, &found) != service::IdempotencyCache::kMiss) std::abort();
    if (!cache.Insert(key, digest, bytes, absl::Now())) std::abort();
    state.SetIterationTime(tail.Stop());
  }
  if (cache.size() > 200'000) state.SkipWithError("the cache outgrew its bound");
  tail.Report(state);
}
BENCHMARK(BM_IdempotencyFindInsertFull)->Arg(0)->UseManualTime();
BENCHMARK(BM_IdempotencyFindInsertFull)->Arg(100)->Iterations(50'000)->UseManualTime();

// UniqueIds gives each iteration its own request_id (the Service answers a request_id it has
// decided from its idempotency cache: BM_ServiceEvaluateReplay measures that path).
class UniqueIds {
 public:
  void Next(Request* request) {
    id_.assign("bench-");
    absl::StrAppend(&id_, ++n_);
    request->set_request_id(id_);
  }

 private:
  std::string id_;
  uint64_t n_ = 0;
};

// The whole per-request path without gRPC (validate, idempotency, count, evaluate, encode,
// cases) for an ALLOW request, with range(0) cases open (HOLD cases on other items) and, when
// range(1) is 1, a SAFE_MODE case in force on another workflow (the ALLOW path then takes a
// reader lock). Memory store: no disk.
void BM_ServiceEvaluateAllow(benchmark::State& state) {
  std::unique_ptr<service::Service> owned = *service::Service::Create(Bundled());
  service::Service& service = *owned;
  v1::EvaluateResponse response;
  for (int64_t i = 0; i < state.range(0); ++i) {
    Request hold = AllowRequest();
    hold.set_request_id("open-" + std::to_string(i));
    hold.set_item_id("item-" + std::to_string(i));
    hold.mutable_model()->set_confidence(0.5);
    if (!service.Evaluate(hold, &response).ok()) std::abort();
  }
  if (state.range(1) == 1) {
    Request storm = AllowRequest();
    storm.set_workflow_id("billing");
    (*storm.mutable_signals())["retry"] = 5;
    if (!service.Evaluate(storm, &response).ok()) std::abort();
  }
  if (service.cases().open_cases() != static_cast<size_t>(state.range(0) + state.range(1))) {
    state.SkipWithError("cases were not opened");
    return;
  }
  Request request = AllowRequest();
  UniqueIds ids;
  for (auto _ : state) {
    ids.Next(&request);
    response.Clear();
    if (!service.Evaluate(request, &response).ok()) std::abort();
    benchmark::DoNotOptimize(response);
  }
  if (response.verdict() != v1::VERDICT_ALLOW || response.replayed()) {
    state.SkipWithError("not a fresh ALLOW");
  }
}
BENCHMARK(BM_ServiceEvaluateAllow)->Args({0, 0})->Args({10000, 0})->Args({10000, 1});

// The same request again: answered from the idempotency cache.
void BM_ServiceEvaluateReplay(benchmark::State& state) {
  std::unique_ptr<service::Service> owned = *service::Service::Create(Bundled());
  service::Service& service = *owned;
  v1::EvaluateResponse response;
  const Request request = AllowRequest();
  if (!service.Evaluate(request, &response).ok()) std::abort();
  for (auto _ : state) {
    response.Clear();
    if (!service.Evaluate(request, &response).ok()) std::abort();
    benchmark::DoNotOptimize(response);
  }
  if (!response.replayed()) state.SkipWithError("not replayed");
}
BENCHMARK(BM_ServiceEvaluateReplay);

// The server's default: the SQLite store and the decision log in a temporary data dir. What the
// request thread pays for an ALLOW (the store's and the log's writer threads run beside it) and,
// with range(0) = 1, for a BLOCK that opens a case (committed, and its log line written, before
// Evaluate returns).
void BM_ServiceEvaluateDurable(benchmark::State& state) {
  char dir[] = "/tmp/agate-bench-XXXXXX";
  if (mkdtemp(dir) == nullptr) std::abort();
  {
    auto sqlite = store::SqliteStore::Open({.dir = dir});
    auto log = store::DecisionLog::Open({.dir = std::string(dir) + "/decisions"});
    if (!sqlite.ok() || !log.ok()) std::abort();
    service::ServiceOptions options;
    options.store = sqlite->get();
    options.decision_log = log->get();
    std::unique_ptr<service::Service> owned =
        *service::Service::Create(Bundled(), RealClock(), options);
    service::Service& service = *owned;
    v1::EvaluateResponse response;
    Request request = AllowRequest();
    const bool escalate = state.range(0) == 1;
    if (escalate) {
      request.mutable_action()->set_type("refund");
      request.mutable_action()->set_amount(400);
    }
    UniqueIds ids;
    uint64_t n = 0;
    for (auto _ : state) {
      ids.Next(&request);
      // A new item each time: every BLOCK opens a case of its own.
      if (escalate) request.set_item_id(absl::StrCat("order-", ++n));
      response.Clear();
      if (!service.Evaluate(request, &response).ok()) std::abort();
      benchmark::DoNotOptimize(response);
    }
    if (response.verdict() != (escalate ? v1::VERDICT_BLOCK : v1::VERDICT_ALLOW)) {
      state.SkipWithError("unexpected verdict");
    }
    state.SetLabel(escalate ? "BLOCK, opens a case" : "ALLOW");
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_ServiceEvaluateDurable)->Arg(0)->Arg(1)->UseRealTime();

// A matrix of n triggers: the bundled ones (10) plus generated rules of the form
// `action.type == "op_<i>" && action.amount > <i>.0` (indexed by action type) or, when indexed
// is 0, `action.target == "op_<i>" && ...` (every request must evaluate them).
std::shared_ptr<const Matrix> Generated(int n, bool indexed) {
  std::string yaml(AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml");
  std::ifstream in(yaml);
  std::stringstream text;
  text << in.rdbuf();
  std::string out = text.str();
  static const char* kLanes[] = {"customer", "policy", "ops", "security", "financial"};
  for (int i = static_cast<int>(Bundled()->triggers().size()); i < n; ++i) {
    out += "  - id: rule-" + std::to_string(i) + "\n    lane: " + kLanes[i % 5] +
           "\n    when: action." + (indexed ? "type" : "target") + " == \"op_" + std::to_string(i) +
           "\" && action.amount > " + std::to_string(i) + ".0\n";
  }
  auto m = ParseMatrix(out, "generated.yaml", nullptr);
  if (!m.ok()) std::abort();
  return *m;
}

// range(0) triggers, range(1) indexed or not; an ALLOW request whose type no rule names.
void BM_EvaluateAllowGenerated(benchmark::State& state) {
  const std::shared_ptr<const Matrix> matrix =
      Generated(static_cast<int>(state.range(0)), state.range(1) == 1);
  const Request request = AllowRequest();
  for (auto _ : state) {
    Decision d = Evaluate(matrix, request, RealClock().Now());
    benchmark::DoNotOptimize(d);
  }
  state.SetLabel(state.range(1) == 1 ? "indexed" : "unindexed");
}
BENCHMARK(BM_EvaluateAllowGenerated)
    ->Args({10, 1})
    ->Args({100, 1})
    ->Args({1000, 1})
    ->Args({10000, 1})
    ->Args({10, 0})
    ->Args({100, 0})
    ->Args({1000, 0})
    ->Args({10000, 0});

// The same with a request of a type one rule names (that rule is evaluated, and does not fire).
void BM_EvaluateTypedGenerated(benchmark::State& state) {
  const std::shared_ptr<const Matrix> matrix = Generated(static_cast<int>(state.range(0)), true);
  Request request = AllowRequest();
  request.mutable_action()->set_type("op_9");
  request.mutable_action()->set_amount(1);
  for (auto _ : state) {
    Decision d = Evaluate(matrix, request, RealClock().Now());
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_EvaluateTypedGenerated)->Arg(10)->Arg(10000);

void BM_LoadBundledMatrix(benchmark::State& state) {
  for (auto _ : state) {
    auto m = LoadMatrixFile(AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml", nullptr);
    benchmark::DoNotOptimize(m);
  }
}
BENCHMARK(BM_LoadBundledMatrix);

}  // namespace
}  // namespace agate::engine
