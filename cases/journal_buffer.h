// JournalBuffer: what the case store's current operation changed, and what failed commits left
// uncommitted, until the next JournalBatch carries them (cases/case_journal.h).
//
// Thread-compatible: the case store guards it with its lock.
#ifndef AGATE_CASES_JOURNAL_BUFFER_H_
#define AGATE_CASES_JOURNAL_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "cases/case_journal.h"

namespace agate::cases {

class JournalBuffer {
 public:
  // What a batch carries: the cases (by seq) and triggers to write whole, the transitions to
  // append, the cases to forget.
  struct Changes {
    absl::flat_hash_set<uint64_t> cases;
    std::vector<JournalTransition> transitions;
    std::vector<uint64_t> forgotten;
    absl::flat_hash_set<std::pair<std::string, std::string>> triggers;  // (trigger, tenant)
    bool empty() const {
      return cases.empty() && transitions.empty() && forgotten.empty() && triggers.empty();
    }
  };

  // Past this many transitions waiting for a journal that keeps failing the oldest are dropped
  // from the transitions table (the cases themselves, history included, are always written
  // whole).
  static constexpr size_t kMaxUnsyncedTransitions = 100'000;

  void TouchCase(uint64_t seq) { pending_.cases.insert(seq); }
  void AddTransition(uint64_t seq, const v1::Transition& t) {
    pending_.cases.insert(seq);
    pending_.transitions.push_back({seq, t});
  }
  void TouchTrigger(const std::pair<std::string, std::string>& key) {
    pending_.triggers.insert(key);
  }
  // Forget drops case seq from what is pending and records that the journal must forget it.
  void Forget(uint64_t seq);

  // TakeAll returns what failed commits left, then what is pending, and clears both.
  Changes TakeAll();
  // KeepUnsynced stores changes a commit could not write, to go first into the next batch.
  void KeepUnsynced(Changes changes);
  // Discard drops what is pending (no journal: memory only).
  void Discard() { pending_ = Changes(); }
  // unsynced_cases returns how many cases have changes not yet committed.
  size_t unsynced_cases() const { return unsynced_.cases.size(); }

 private:
  Changes pending_;
  Changes unsynced_;
};

}  // namespace agate::cases

#endif  // AGATE_CASES_JOURNAL_BUFFER_H_
