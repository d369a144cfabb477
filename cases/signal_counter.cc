#include "cases/signal_counter.h"

#include <algorithm>
#include <limits>
#include <map>

#include "absl/hash/hash.h"

namespace agate::cases {

using engine::Request;
namespace {

// BuildKey writes tenant '\0' workflow '\0' signal into a per-thread buffer, which keeps its
// capacity: after the first calls on a thread, building a key allocates nothing.
absl::string_view BuildKey(const Request& request, absl::string_view signal) {
  thread_local std::string key;
  key.clear();
  key.append(request.tenant_id());
  key.push_back('\0');
  key.append(request.workflow_id());
  key.push_back('\0');
  key.append(signal.data(), signal.size());
  return key;
}

int64_t SaturatingAdd(int64_t a, int64_t b) {
  if (b > 0 && a > std::numeric_limits<int64_t>::max() - b) {
    return std::numeric_limits<int64_t>::max();
  }
  return a + b;
}

}  // namespace

SlidingWindowCounter::SlidingWindowCounter(const Clock& clock, SignalCounterOptions options)
    : clock_(clock), options_(options) {}

SlidingWindowCounter::Shard& SlidingWindowCounter::ShardFor(absl::string_view key) const {
  return shards_[absl::HashOf(key) % kShards];
}

void SlidingWindowCounter::Record(const Request& request) {
  if (request.signals().empty()) return;
  const int64_t now = absl::ToUnixSeconds(clock_.Now());
  for (const auto& [signal, count] : request.signals()) {
    if (count <= 0) continue;
    const absl::string_view key = BuildKey(request, signal);
    Shard& shard = ShardFor(key);
    absl::MutexLock lock(&shard.mu);
    auto it = shard.series.find(key);
    if (it == shard.series.end()) {
      EvictLocked(shard, now);
      it = shard.series.try_emplace(std::string(key)).first;
    }
    std::deque<Bucket>& buckets = it->second.buckets;
    if (!buckets.empty() && buckets.back().second >= now) {
      // Same second (or a clock that stepped back): add to the newest bucket.
      buckets.back().count = SaturatingAdd(buckets.back().count, count);
    } else {
      buckets.push_back(Bucket{now, count});
    }
    // Forget what no window can see any more.
    const int64_t horizon = now - absl::ToInt64Seconds(options_.max_window);
    while (!buckets.empty() && buckets.front().second <= horizon) buckets.pop_front();
    if (buckets.size() > kMaxBuckets) {
      // Merge the two oldest into one stamped with the newer time: counts only err upwards.
      const Bucket oldest = buckets.front();
      buckets.pop_front();
      buckets.front().count = SaturatingAdd(buckets.front().count, oldest.count);
    }
  }
}

void SlidingWindowCounter::EvictLocked(Shard& shard, int64_t now) {
  const size_t per_shard = std::max<size_t>(1, options_.max_keys / kShards);
  if (shard.series.size() < per_shard) return;
  const int64_t horizon = now - absl::ToInt64Seconds(options_.max_window);
  // First drop every key with nothing left inside max_window.
  for (auto it = shard.series.begin(); it != shard.series.end();) {
    const std::deque<Bucket>& b = it->second.buckets;
    if (b.empty() || b.back().second <= horizon) {
      shard.series.erase(it++);
    } else {
      ++it;
    }
  }
  if (shard.series.size() < per_shard) return;
  // Still full: drop the key whose newest event is the oldest.
  auto victim =
      std::min_element(shard.series.begin(), shard.series.end(), [](const auto& a, const auto& b) {
        return a.second.buckets.back().second < b.second.buckets.back().second;
      });
  shard.series.erase(victim);
}

int64_t SlidingWindowCounter::Count(const Request& request, absl::string_view signal,
                                    absl::Duration window) const {
  const absl::string_view key = BuildKey(request, signal);
  const int64_t now = absl::ToUnixSeconds(clock_.Now());
  // A bucket at second s holds events of [s, s+1); the window (now - window, now] covers the
  // buckets with s > now - window.
  // Windows are counted in whole seconds, at least one (the request's own second).
  const int64_t seconds = std::max<int64_t>(
      1, absl::ToInt64Seconds(absl::Ceil(std::min(window, options_.max_window), absl::Seconds(1))));
  const int64_t since = now - seconds;
  Shard& shard = ShardFor(key);
  absl::MutexLock lock(&shard.mu);
  auto it = shard.series.find(key);
  if (it == shard.series.end()) return 0;
  int64_t total = 0;
  const std::deque<Bucket>& buckets = it->second.buckets;
  for (auto b = buckets.rbegin(); b != buckets.rend() && b->second > since; ++b) {
    total = SaturatingAdd(total, b->count);
  }
  const std::vector<Bucket>& others = it->second.others;
  for (auto b = others.rbegin(); b != others.rend() && b->second > since; ++b) {
    total = SaturatingAdd(total, b->count);
  }
  return total;
}

void SlidingWindowCounter::SetOthers(const std::vector<store::v1::StoredSignalSeries>& stored) {
  const int64_t now = absl::ToUnixSeconds(clock_.Now());
  const int64_t horizon = now - absl::ToInt64Seconds(options_.max_window);
  absl::flat_hash_map<std::string, std::map<int64_t, int64_t>> merged;
  for (const store::v1::StoredSignalSeries& s : stored) {
    if (s.seconds_size() != s.counts_size()) continue;
    for (int i = 0; i < s.seconds_size(); ++i) {
      if (s.seconds(i) <= horizon || s.counts(i) <= 0) continue;
      int64_t& count = merged[s.key()][s.seconds(i)];
      count = SaturatingAdd(count, s.counts(i));
    }
  }
  for (Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    for (auto it = shard.series.begin(); it != shard.series.end();) {
      it->second.others.clear();
      if (it->second.buckets.empty()) {
        shard.series.erase(it++);
      } else {
        ++it;
      }
    }
  }
  for (const auto& [key, seconds] : merged) {
    Shard& shard = ShardFor(key);
    absl::MutexLock lock(&shard.mu);
    if (!shard.series.contains(key)) EvictLocked(shard, now);
    std::vector<Bucket>& others = shard.series[key].others;
    for (const auto& [second, count] : seconds) others.push_back(Bucket{second, count});
    if (others.size() > kMaxBuckets) {
      // Fold the oldest into the first kept one (stamped newer): counts only err upwards.
      const size_t fold = others.size() - kMaxBuckets;
      for (size_t i = 0; i < fold; ++i) {
        others[fold].count = SaturatingAdd(others[fold].count, others[i].count);
      }
      others.erase(others.begin(), others.begin() + static_cast<std::ptrdiff_t>(fold));
    }
  }
}

std::vector<store::v1::StoredSignalSeries> SlidingWindowCounter::Export() const {
  std::vector<store::v1::StoredSignalSeries> out;
  for (Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    for (const auto& [key, series] : shard.series) {
      if (series.buckets.empty()) continue;  // only the other replicas' events
      store::v1::StoredSignalSeries& s = out.emplace_back();
      s.set_key(key);
      for (const Bucket& b : series.buckets) {
        s.add_seconds(b.second);
        s.add_counts(b.count);
      }
    }
  }
  return out;
}

void SlidingWindowCounter::Import(const std::vector<store::v1::StoredSignalSeries>& stored) {
  const int64_t now = absl::ToUnixSeconds(clock_.Now());
  const int64_t horizon = now - absl::ToInt64Seconds(options_.max_window);
  for (const store::v1::StoredSignalSeries& s : stored) {
    if (s.seconds_size() != s.counts_size()) continue;
    Shard& shard = ShardFor(s.key());
    absl::MutexLock lock(&shard.mu);
    std::deque<Bucket> buckets;
    for (int i = 0; i < s.seconds_size(); ++i) {
      // Only what a window can still see, in order, positive, at most kMaxBuckets (the newest).
      if (s.seconds(i) <= horizon || s.counts(i) <= 0) continue;
      if (!buckets.empty() && s.seconds(i) <= buckets.back().second) continue;
      buckets.push_back(Bucket{s.seconds(i), s.counts(i)});
    }
    while (buckets.size() > kMaxBuckets) buckets.pop_front();
    if (buckets.empty()) continue;
    if (!shard.series.contains(s.key())) EvictLocked(shard, now);
    shard.series[s.key()].buckets = std::move(buckets);
  }
}

size_t SlidingWindowCounter::keys() const {
  size_t total = 0;
  for (Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    total += shard.series.size();
  }
  return total;
}

}  // namespace agate::cases
