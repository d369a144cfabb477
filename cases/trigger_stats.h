// TriggerStats: "escalations are data". Per trigger, how many decisions it fired in, how many of
// its cases are open, how its cases ended (approved, rejected, resolved, expired) and the median
// time to a human decision over the newest kDecisionSamples acknowledged cases.
//
// Counts are kept per (trigger, tenant), so an operator reads only its tenants' numbers.
//
// Thread-compatible: the case store guards it with its lock.
#ifndef AGATE_CASES_TRIGGER_STATS_H_
#define AGATE_CASES_TRIGGER_STATS_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "agate/store/v1/store.pb.h"
#include "agate/v1/agate.pb.h"
#include "engine/matrix.h"

namespace agate::cases {

class TriggerStats {
 public:
  // Times to decision kept per trigger for the median.
  static constexpr size_t kDecisionSamples = 1024;

  // (trigger, tenant): what the counts are of.
  using Key = std::pair<std::string, std::string>;

  // Fired counts a decision of tenant in which trigger (of lane) fired.
  void Fired(const Key& key, const std::string& lane);
  // Opened counts a case the trigger is part of from now on (it opened or joined it).
  void Opened(const Key& key, const std::string& lane);
  // Closed moves one of the trigger's cases from open to state; a human decision (not EXPIRED)
  // adds its time to decision to the samples.
  void Closed(const Key& key, v1::CaseState state, absl::Duration time_to_decision);

  // Fill appends to *out every trigger of matrix (if not null) in order, then any other trigger
  // with counts (sorted by id), summing the tenants include says.
  void Fill(const engine::Matrix* matrix, const std::function<bool(const std::string&)>& include,
            v1::GetStatsResponse* out) const;
  // Stored returns the stored form of the given counts (those that exist).
  std::vector<store::v1::StoredTriggerStats> Stored(const absl::flat_hash_set<Key>& keys) const;
  // Restore replaces the counts with what a journal kept.
  void Restore(const std::vector<store::v1::StoredTriggerStats>& stored);
  // Put replaces the counts of one (trigger, tenant) with stored ones (another server's, through a
  // shared journal).
  void Put(const store::v1::StoredTriggerStats& stored);

 private:
  struct Counts {
    std::string lane;
    uint64_t fired = 0;
    uint64_t open = 0;
    uint64_t approved = 0;
    uint64_t rejected = 0;
    uint64_t resolved = 0;
    uint64_t expired = 0;
    std::deque<int64_t> decision_ms;  // the newest kDecisionSamples times to decision
    // Add adds other's counts and samples.
    void Add(const Counts& other);
    void FillInto(v1::TriggerStats* s) const;
  };
  absl::flat_hash_map<Key, Counts> counts_;
};

}  // namespace agate::cases

#endif  // AGATE_CASES_TRIGGER_STATS_H_
