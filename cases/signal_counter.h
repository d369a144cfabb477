// SignalCounter: the sliding-window event counts behind `count(signal, window)`.
//
// Requests report events in `signals` (e.g. {"retry": 2}); Record adds them to the key
// (tenant_id, workflow_id, signal) at the clock's now, and Count sums the events of a key within
// a window ending now. A trigger such as `count("retry", "10m") > 3` therefore fires on the
// fourth retry reported by any agent of that tenant's workflow within ten minutes.
//
// Memory is bounded: events are kept in one-second buckets, at most kMaxBuckets per key; when a
// key is full its two oldest buckets merge into one stamped with the newer time, so a count can
// only err upwards (a trigger fires early, never late: fail closed). At most max_keys keys are
// kept; when full, keys whose newest event is older than max_window are evicted first, then the
// key with the oldest newest event. Counts older than max_window are forgotten.
//
// Replicas sharing one store (docs/scale.md) exchange their windows: SetOthers adds the other
// replicas' buckets, which Count sums with this replica's own; Export exports only its own.
//
// Thread-safe: keys are spread over shards, each with its own mutex. Count allocates nothing.
//
// Example:
//   SlidingWindowCounter counter(clock);
//   counter.Record(request);                          // before evaluating request
//   Evaluator evaluator(matrix, clock, &counter);     // count() reads the window
#ifndef AGATE_CASES_SIGNAL_COUNTER_H_
#define AGATE_CASES_SIGNAL_COUNTER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agate/store/v1/store.pb.h"
#include "common/clock.h"
#include "engine/expr/program.h"
#include "engine/request.h"

namespace agate::cases {

struct SignalCounterOptions {
  // Keys (tenant, workflow, signal) kept at most.
  size_t max_keys = 100'000;
  // Events older than this are forgotten; count() windows longer than this see only this much.
  absl::Duration max_window = absl::Hours(24);
};

class SlidingWindowCounter : public engine::expr::SignalCounter {
 public:
  // Buckets kept per key (one per second with events, merged when full): 16 bytes each.
  static constexpr size_t kMaxBuckets = 256;

  explicit SlidingWindowCounter(const Clock& clock, SignalCounterOptions options = {});

  // Record adds request's signals (each count > 0) at the clock's now.
  void Record(const engine::Request& request);

  // Count implements engine::expr::SignalCounter: events of (request's tenant, workflow, signal)
  // within window up to now, including those Record added for request itself.
  int64_t Count(const engine::Request& request, absl::string_view signal,
                absl::Duration window) const override;

  // Export returns every key's buckets (the durable store snapshots them). Takes each shard's
  // lock in turn: a snapshot taken under load is consistent per key, not across keys.
  std::vector<store::v1::StoredSignalSeries> Export() const;
  // Import loads series that Export returned (at start-up, before requests), skipping what no
  // window can see any more; an imported key replaces the same key's buckets.
  void Import(const std::vector<store::v1::StoredSignalSeries>& series);
  // SetOthers replaces the other replicas' buckets with series (several series of one key are
  // summed per second; what no window can see any more is skipped; past kMaxBuckets per key the
  // oldest merge upwards, as Record's do).
  void SetOthers(const std::vector<store::v1::StoredSignalSeries>& series);

  // keys returns how many keys are kept (for tests and stats).
  size_t keys() const;

 private:
  struct Bucket {
    int64_t second;  // Unix seconds
    int64_t count;
  };
  struct Series {
    std::deque<Bucket> buckets;  // oldest first
    std::vector<Bucket> others;  // the other replicas' (SetOthers), oldest first
  };
  // Key: tenant '\0' workflow '\0' signal (ids cannot contain NUL: proto strings are UTF-8 and
  // ValidateRequest bounds them; a NUL inside would only merge keys, never crash).
  struct Shard {
    mutable absl::Mutex mu;
    absl::flat_hash_map<std::string, Series> series ABSL_GUARDED_BY(mu);
  };
  static constexpr size_t kShards = 16;

  Shard& ShardFor(absl::string_view key) const;
  void EvictLocked(Shard& shard, int64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);

  const Clock& clock_;
  const SignalCounterOptions options_;
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace agate::cases

#endif  // AGATE_CASES_SIGNAL_COUNTER_H_
