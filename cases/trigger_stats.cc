#include "cases/trigger_stats.h"

#include <algorithm>

#include "common/proto_time.h"

namespace agate::cases {

void TriggerStats::Counts::FillInto(v1::TriggerStats* s) const {
  if (!lane.empty()) s->set_lane(lane);
  s->set_fired(fired);
  s->set_open(open);
  s->set_approved(approved);
  s->set_rejected(rejected);
  s->set_resolved(resolved);
  s->set_expired(expired);
  if (!decision_ms.empty()) {
    std::vector<int64_t> ms(decision_ms.begin(), decision_ms.end());
    std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
    *s->mutable_median_time_to_decision() = ToDurationProto(absl::Milliseconds(ms[ms.size() / 2]));
  }
}

void TriggerStats::Counts::Add(const Counts& other) {
  if (lane.empty()) lane = other.lane;
  fired += other.fired;
  open += other.open;
  approved += other.approved;
  rejected += other.rejected;
  resolved += other.resolved;
  expired += other.expired;
  decision_ms.insert(decision_ms.end(), other.decision_ms.begin(), other.decision_ms.end());
}

void TriggerStats::Fired(const Key& key, const std::string& lane) {
  Counts& c = counts_[key];
  c.lane = lane;
  ++c.fired;
}

void TriggerStats::Opened(const Key& key, const std::string& lane) {
  Counts& c = counts_[key];
  c.lane = lane;
  ++c.open;
}

void TriggerStats::Closed(const Key& key, v1::CaseState state, absl::Duration time_to_decision) {
  Counts& c = counts_[key];
  if (c.open > 0) --c.open;
  switch (state) {
    case v1::CASE_STATE_APPROVED:
      ++c.approved;
      break;
    case v1::CASE_STATE_REJECTED:
      ++c.rejected;
      break;
    case v1::CASE_STATE_RESOLVED:
      ++c.resolved;
      break;
    default:
      ++c.expired;
      break;
  }
  if (state != v1::CASE_STATE_EXPIRED) {
    c.decision_ms.push_back(absl::ToInt64Milliseconds(time_to_decision));
    if (c.decision_ms.size() > kDecisionSamples) c.decision_ms.pop_front();
  }
}

void TriggerStats::Fill(const engine::Matrix* matrix,
                        const std::function<bool(const std::string&)>& include,
                        v1::GetStatsResponse* out) const {
  // Sum each trigger's counts over the included tenants.
  absl::flat_hash_map<std::string, Counts> sums;
  for (const auto& [key, counts] : counts_) {
    if (include(key.second)) sums[key.first].Add(counts);
  }
  auto add = [&](const std::string& id, absl::string_view lane) {
    v1::TriggerStats& s = *out->add_triggers();
    s.set_trigger_id(id);
    s.set_lane(std::string(lane));
    auto it = sums.find(id);
    if (it != sums.end()) it->second.FillInto(&s);
  };
  absl::flat_hash_set<std::string> listed;
  if (matrix != nullptr) {
    for (const engine::Trigger& t : matrix->triggers()) {
      add(t.id, matrix->lanes()[t.lane].name);
      listed.insert(t.id);
    }
  }
  std::vector<std::string> others;
  for (const auto& [id, counts] : sums) {
    if (!listed.contains(id)) others.push_back(id);
  }
  std::sort(others.begin(), others.end());
  for (const std::string& id : others) add(id, "");
}

std::vector<store::v1::StoredTriggerStats> TriggerStats::Stored(
    const absl::flat_hash_set<Key>& keys) const {
  std::vector<store::v1::StoredTriggerStats> out;
  for (const Key& key : keys) {
    auto it = counts_.find(key);
    if (it == counts_.end()) continue;
    store::v1::StoredTriggerStats& stored = out.emplace_back();
    stored.mutable_stats()->set_trigger_id(key.first);
    stored.set_tenant_id(key.second);
    it->second.FillInto(stored.mutable_stats());
    for (int64_t ms : it->second.decision_ms) stored.add_decision_ms(ms);
  }
  return out;
}

void TriggerStats::Restore(const std::vector<store::v1::StoredTriggerStats>& stored) {
  counts_.clear();
  for (const store::v1::StoredTriggerStats& s : stored) Put(s);
}

void TriggerStats::Put(const store::v1::StoredTriggerStats& s) {
  const v1::TriggerStats& stats = s.stats();
  Counts& c = counts_[Key(stats.trigger_id(), s.tenant_id())];
  c.lane = stats.lane();
  c.fired = stats.fired();
  c.open = stats.open();
  c.approved = stats.approved();
  c.rejected = stats.rejected();
  c.resolved = stats.resolved();
  c.expired = stats.expired();
  c.decision_ms.assign(s.decision_ms().begin(), s.decision_ms().end());
}

}  // namespace agate::cases
