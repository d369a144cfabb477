#include "engine/decision.h"

#include <atomic>
#include <cstdint>
#include <random>

namespace agate::engine {
namespace {

constexpr char kCrockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

uint32_t ProcessRandom() {
  static const uint32_t kValue = [] {
    std::random_device rd;
    return static_cast<uint32_t>(rd());
  }();
  return kValue;
}

std::atomic<uint64_t> g_counter{0};

}  // namespace

std::vector<int> MissingEvidence(const Lane& lane, const Request& request) {
  std::vector<int> missing;
  for (size_t e = 0; e < lane.evidence.size(); ++e) {
    auto it = request.evidence().find(lane.evidence[e]);
    if (it == request.evidence().end() || it->second.empty()) {
      missing.push_back(static_cast<int>(e));
    }
  }
  return missing;
}

DecisionId DecisionId::Next(absl::Time now) {
  // 128 bits: 48 bits of Unix milliseconds, 32 random bits fixed per process, 48 bits of a
  // process-wide counter. Unique within a process by the counter, across processes by the
  // random part, and sortable by time.
  const uint64_t ms = static_cast<uint64_t>(absl::ToUnixMillis(now)) & ((uint64_t{1} << 48) - 1);
  const uint64_t counter =
      g_counter.fetch_add(1, std::memory_order_relaxed) & ((uint64_t{1} << 48) - 1);
  const uint32_t random = ProcessRandom();
  const uint64_t hi = (ms << 16) | (random >> 16);
  const uint64_t lo = (static_cast<uint64_t>(random & 0xFFFF) << 48) | counter;
  DecisionId id;
  // 26 base32 digits cover 130 bits, the lowest digit last; the first digit holds the top 2.
  unsigned __int128 value = (static_cast<unsigned __int128>(hi) << 64) | lo;
  for (int i = 25; i >= 0; --i) {
    id.chars_[i] = kCrockford[static_cast<unsigned>(value) & 31];
    value >>= 5;
  }
  return id;
}

}  // namespace agate::engine
