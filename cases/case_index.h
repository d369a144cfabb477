// CaseIndex: the kept cases' creation sequence numbers under every combination of the three
// ListCases filters that name a value — state, lane and tenant — so that a ListCases page is read
// from a set holding exactly the matching cases instead of a scan of every case.
//
// Each case is in eight ordered sets: (any state, any lane, any tenant), (its state, any lane, any
// tenant), ..., (its state, its lane, its tenant). A state change moves it in the four sets that
// name the state. The sets are B-trees of 8-byte numbers: 100,000 open cases took 20 MB more
// with the index (about 200 bytes a case; bench/case_store_bench.cc, docs/perf.md).
//
// Thread-compatible: the case store guards it with its lock.
//
// Example:
//   index.Add(seq, v1::CASE_STATE_OPEN, "refunds", "t1");
//   const CaseIndex::Seqs* open_refunds = index.Find(v1::CASE_STATE_OPEN, "refunds", "");
#ifndef AGATE_CASES_CASE_INDEX_H_
#define AGATE_CASES_CASE_INDEX_H_

#include <cstdint>
#include <string>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "agate/v1/agate.pb.h"

namespace agate::cases {

class CaseIndex {
 public:
  using Seqs = absl::btree_set<uint64_t>;

  // Add indexes case seq under its state, lane and tenant.
  void Add(uint64_t seq, v1::CaseState state, absl::string_view lane, absl::string_view tenant);
  // Remove takes seq out of the sets Add put it in (the same state, lane and tenant).
  void Remove(uint64_t seq, v1::CaseState state, absl::string_view lane, absl::string_view tenant);
  // Find returns the cases with that state (CASE_STATE_UNSPECIFIED: any), lane and tenant (empty:
  // any), or null when there is none.
  const Seqs* Find(v1::CaseState state, absl::string_view lane, absl::string_view tenant) const;

 private:
  static constexpr int kCombinations = 8;
  // Key is the set's name: which filters it names (a bit each) and their values.
  static std::string Key(int combination, v1::CaseState state, absl::string_view lane,
                         absl::string_view tenant);

  absl::flat_hash_map<std::string, Seqs> sets_;
};

}  // namespace agate::cases

#endif  // AGATE_CASES_CASE_INDEX_H_
