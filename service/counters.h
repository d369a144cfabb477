// Counters: every counter and gauge agate-server reports, declared in one list.
//
// As Envoy's ext_authz declares its stats in one macro, AGATE_COUNTERS names each counter that
// the request path and the process increment, with its help text; Service::Metrics() adds the
// values other components keep (the case store, the durable store, the decision log, the
// idempotency cache) and labels, so GetStats and the metrics endpoint read the same samples.
// Names follow Prometheus conventions (snake_case, counters end in _total). No label carries an
// unbounded value (no agent, case or request ids).
//
// Thread-safe: the counters are relaxed atomics.
#ifndef AGATE_SERVICE_COUNTERS_H_
#define AGATE_SERVICE_COUNTERS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "engine/verdict.h"

namespace agate::service {

// COUNTER(member, name, help): incremented where the event happens.
#define AGATE_COUNTERS(COUNTER)                                                                 \
  COUNTER(shed_calls, "agate_shed_calls_total",                                                 \
          "Evaluate calls answered RESOURCE_EXHAUSTED because the server was overloaded")       \
  COUNTER(watchers_refused, "agate_watchers_refused_total",                                     \
          "WatchCases streams refused past --max-watchers or --max-watchers-per-principal")     \
  COUNTER(redemptions, "agate_redemptions_total", "Approvals redeemed for ALLOW")               \
  COUNTER(evaluate_errors, "agate_evaluate_errors_total",                                       \
          "Evaluate calls that got no decision (invalid, overloaded, store unavailable)")       \
  COUNTER(matrix_reloads, "agate_matrix_reloads_total", "Matrix reloads that swapped a matrix") \
  COUNTER(matrix_reload_failures, "agate_matrix_reload_failures_total",                         \
          "Matrix reloads that failed (the running matrix kept serving)")                       \
  COUNTER(shadow_matrix_reloads, "agate_shadow_matrix_reloads_total",                           \
          "Shadow (candidate) matrix reloads that swapped the candidate")                       \
  COUNTER(shadow_matrix_reload_failures, "agate_shadow_matrix_reload_failures_total",           \
          "Shadow matrix reloads that failed (the previous candidate kept being compared)")     \
  COUNTER(webhook_deliveries, "agate_webhook_deliveries_total",                                 \
          "Case events posted to the webhook with a 2xx answer")                                \
  COUNTER(webhook_failures, "agate_webhook_failures_total",                                     \
          "Case events the webhook was given up on after every attempt")

class Counters {
 public:
#define AGATE_COUNTER_MEMBER(member, name, help) std::atomic<uint64_t> member{0};
  AGATE_COUNTERS(AGATE_COUNTER_MEMBER)
#undef AGATE_COUNTER_MEMBER

  // Decisions by verdict (indexed by the Verdict's number).
  void CountDecision(engine::Verdict verdict) {
    decisions_[static_cast<size_t>(verdict) % decisions_.size()].fetch_add(
        1, std::memory_order_relaxed);
  }
  uint64_t decisions(engine::Verdict verdict) const {
    return decisions_[static_cast<size_t>(verdict) % decisions_.size()].load(
        std::memory_order_relaxed);
  }

  static void Add(std::atomic<uint64_t>& counter, uint64_t n = 1) {
    counter.fetch_add(n, std::memory_order_relaxed);
  }

  // Escalations by verdict and lane (a non-ALLOW decision's lane: bounded by the matrices'
  // lanes). Takes a lock: the escalation path takes the case store's anyway.
  void CountEscalation(engine::Verdict verdict, const std::string& lane) ABSL_LOCKS_EXCLUDED(mu_);
  // EscalationsByLane returns (lane, verdict, count) for every pair counted, sorted.
  std::vector<std::tuple<std::string, engine::Verdict, uint64_t>> EscalationsByLane() const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Acknowledgements by decision (APPROVE, REJECT).
  void CountAck(int decision) {
    acks_[static_cast<size_t>(decision) % acks_.size()].fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t acks(int decision) const {
    return acks_[static_cast<size_t>(decision) % acks_.size()].load(std::memory_order_relaxed);
  }

  // The Evaluate latency histogram (decisions made, not errors or replays): upper bounds in
  // seconds; ObserveEvaluate counts one.
  static constexpr std::array<double, 12> kLatencyBounds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0};
  void ObserveEvaluate(int64_t nanos);
  // LatencyBucket returns the count in bucket i (not cumulative; i == kLatencyBounds.size() is
  // past the last bound).
  uint64_t LatencyBucket(size_t i) const { return latency_[i].load(std::memory_order_relaxed); }
  uint64_t latency_count() const { return latency_count_.load(std::memory_order_relaxed); }
  double latency_sum_seconds() const {
    return static_cast<double>(latency_sum_ns_.load(std::memory_order_relaxed)) * 1e-9;
  }

 private:
  std::array<std::atomic<uint64_t>, 7> decisions_{};
  std::array<std::atomic<uint64_t>, 3> acks_{};
  std::array<std::atomic<uint64_t>, kLatencyBounds.size() + 1> latency_{};
  std::atomic<uint64_t> latency_count_{0};
  std::atomic<uint64_t> latency_sum_ns_{0};
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::array<uint64_t, 7>> by_lane_ ABSL_GUARDED_BY(mu_);
};

enum class MetricType { kCounter, kGauge, kHistogram };

// One reported value. A histogram is several samples of one family: NAME_bucket (with an "le"
// label; cumulative), NAME_sum and NAME_count, each with family set to NAME.
struct MetricSample {
  std::string name;
  std::string help;
  MetricType type = MetricType::kCounter;
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
  std::string family;  // a histogram's name; empty: the family is name
};

}  // namespace agate::service

#endif  // AGATE_SERVICE_COUNTERS_H_
