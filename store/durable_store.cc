#include "store/durable_store.h"

#include <algorithm>

namespace agate::store {

void DurableStore::AddCommit(double seconds, Stats* stats) {
  ++stats->commits;
  stats->commit_seconds += seconds;
  ++stats->commit_buckets[std::lower_bound(kCommitBounds.begin(), kCommitBounds.end(), seconds) -
                          kCommitBounds.begin()];
}

}  // namespace agate::store
