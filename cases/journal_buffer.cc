#include "cases/journal_buffer.h"

#include <iterator>
#include <utility>

namespace agate::cases {
namespace {

// Append adds from's changes after into's.
void Append(JournalBuffer::Changes* into, JournalBuffer::Changes from) {
  into->cases.merge(from.cases);
  into->transitions.insert(into->transitions.end(),
                           std::make_move_iterator(from.transitions.begin()),
                           std::make_move_iterator(from.transitions.end()));
  into->forgotten.insert(into->forgotten.end(), from.forgotten.begin(), from.forgotten.end());
  into->triggers.merge(from.triggers);
}

}  // namespace

void JournalBuffer::Forget(uint64_t seq) {
  pending_.cases.erase(seq);
  unsynced_.cases.erase(seq);
  pending_.forgotten.push_back(seq);
}

JournalBuffer::Changes JournalBuffer::TakeAll() {
  Changes all = std::exchange(unsynced_, Changes());
  Append(&all, std::exchange(pending_, Changes()));
  return all;
}

void JournalBuffer::KeepUnsynced(Changes changes) {
  Append(&unsynced_, std::move(changes));
  Append(&unsynced_, std::exchange(pending_, Changes()));
  if (unsynced_.transitions.size() > kMaxUnsyncedTransitions) {
    unsynced_.transitions.erase(
        unsynced_.transitions.begin(),
        unsynced_.transitions.end() - static_cast<ptrdiff_t>(kMaxUnsyncedTransitions));
  }
}

}  // namespace agate::cases
