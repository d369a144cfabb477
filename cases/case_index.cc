#include "cases/case_index.h"

#include "absl/strings/str_cat.h"

namespace agate::cases {

namespace {

constexpr int kState = 1;
constexpr int kLane = 2;
constexpr int kTenant = 4;

}  // namespace

std::string CaseIndex::Key(int combination, v1::CaseState state, absl::string_view lane,
                           absl::string_view tenant) {
  // The lane's length first: no two combinations of values share a key, whatever bytes they hold.
  const absl::string_view l = (combination & kLane) ? lane : "";
  const absl::string_view t = (combination & kTenant) ? tenant : "";
  return absl::StrCat(combination, ".", (combination & kState) ? static_cast<int>(state) : 0, ".",
                      l.size(), ".", l, t);
}

void CaseIndex::Add(uint64_t seq, v1::CaseState state, absl::string_view lane,
                    absl::string_view tenant) {
  for (int combination = 0; combination < kCombinations; ++combination) {
    sets_[Key(combination, state, lane, tenant)].insert(seq);
  }
}

void CaseIndex::Remove(uint64_t seq, v1::CaseState state, absl::string_view lane,
                       absl::string_view tenant) {
  for (int combination = 0; combination < kCombinations; ++combination) {
    auto it = sets_.find(Key(combination, state, lane, tenant));
    if (it == sets_.end()) continue;
    it->second.erase(seq);
    if (it->second.empty()) sets_.erase(it);  // tenants and lanes come and go
  }
}

const CaseIndex::Seqs* CaseIndex::Find(v1::CaseState state, absl::string_view lane,
                                       absl::string_view tenant) const {
  const int combination = (state != v1::CASE_STATE_UNSPECIFIED ? kState : 0) |
                          (lane.empty() ? 0 : kLane) | (tenant.empty() ? 0 : kTenant);
  auto it = sets_.find(Key(combination, state, lane, tenant));
  return it == sets_.end() ? nullptr : &it->second;
}

}  // namespace agate::cases
