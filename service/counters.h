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
#include <utility>
#include <vector>

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

 private:
  std::array<std::atomic<uint64_t>, 7> decisions_{};
};

enum class MetricType { kCounter, kGauge };

// One reported value.
struct MetricSample {
  std::string name;
  std::string help;
  MetricType type = MetricType::kCounter;
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

}  // namespace agate::service

#endif  // AGATE_SERVICE_COUNTERS_H_
