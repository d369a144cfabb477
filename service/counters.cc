#include "service/counters.h"

#include <algorithm>

namespace agate::service {

void Counters::CountEscalation(engine::Verdict verdict, const std::string& lane) {
  absl::MutexLock lock(&mu_);
  by_lane_[lane][static_cast<size_t>(verdict) % 7] += 1;
}

std::vector<std::tuple<std::string, engine::Verdict, uint64_t>> Counters::EscalationsByLane()
    const {
  std::vector<std::tuple<std::string, engine::Verdict, uint64_t>> out;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [lane, counts] : by_lane_) {
      for (size_t v = 0; v < counts.size(); ++v) {
        if (counts[v] > 0) out.emplace_back(lane, static_cast<engine::Verdict>(v), counts[v]);
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

void Counters::ObserveEvaluate(int64_t nanos) {
  const double seconds = static_cast<double>(nanos) * 1e-9;
  const size_t bucket =
      static_cast<size_t>(std::lower_bound(kLatencyBounds.begin(), kLatencyBounds.end(), seconds) -
                          kLatencyBounds.begin());
  latency_[bucket].fetch_add(1, std::memory_order_relaxed);
  latency_count_.fetch_add(1, std::memory_order_relaxed);
  latency_sum_ns_.fetch_add(static_cast<uint64_t>(std::max<int64_t>(nanos, 0)),
                            std::memory_order_relaxed);
}

}  // namespace agate::service
