// DurableStore: what the service needs of a durable store, beside the case journal: read back the
// cases, the decision rows (idempotency) and the count() windows at start-up, save the windows,
// and report commit statistics. store/sqlite_store.h (embedded, one server per data dir) and
// store/postgres_store.h (shared by many servers) implement it.
#ifndef AGATE_STORE_DURABLE_STORE_H_
#define AGATE_STORE_DURABLE_STORE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agate/store/v1/store.pb.h"
#include "cases/case_journal.h"

namespace agate::store {

class DurableStore : public cases::CaseJournal {
 public:
  // Upper bounds (seconds) of the commit latency histogram's buckets.
  static constexpr std::array<double, 10> kCommitBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                           0.025,  0.05,  0.1,    0.25,  1.0};
  struct Stats {
    uint64_t commits = 0;
    uint64_t commit_errors = 0;
    // Successful commits by time taken, the store's lock wait included (the last bucket is past
    // the last bound; not cumulative), and their total time.
    std::array<uint64_t, kCommitBounds.size() + 1> commit_buckets{};
    double commit_seconds = 0;
    uint64_t decisions_written = 0;
    uint64_t decisions_dropped = 0;
    uint64_t decision_write_errors = 0;
  };

  // LoadCases reads every case, every trigger's statistics and the engaged kill switches (for
  // CaseStore::Create).
  virtual absl::StatusOr<cases::JournalContents> LoadCases() = 0;
  // LoadDecisions reads the newest decision rows (at most limit) decided at or after since,
  // oldest first.
  virtual absl::StatusOr<std::vector<cases::DecisionRow>> LoadDecisions(absl::Time since,
                                                                        size_t limit) = 0;
  // SaveSignals replaces the stored count() windows with series; LoadSignals reads them back.
  virtual absl::Status SaveSignals(const std::vector<store::v1::StoredSignalSeries>& series) = 0;
  virtual absl::StatusOr<std::vector<store::v1::StoredSignalSeries>> LoadSignals() = 0;
  // LoadOtherSignals reads the count() windows the other replicas of a shared store saved (every
  // replica's own SaveSignals), to be summed with this one's; none for a private store.
  virtual absl::StatusOr<std::vector<store::v1::StoredSignalSeries>> LoadOtherSignals() {
    return std::vector<store::v1::StoredSignalSeries>();
  }

  virtual Stats stats() const = 0;
  // where names the store in messages (a file path, or a database URL without its password).
  virtual const std::string& where() const = 0;

  // AddCommit counts a successful commit that took seconds into *stats.
  static void AddCommit(double seconds, Stats* stats);
};

}  // namespace agate::store

#endif  // AGATE_STORE_DURABLE_STORE_H_
