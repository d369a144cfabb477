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

void TriggerStats::Fired(const std::string& trigger, const std::string& lane) {
  Counts& c = counts_[trigger];
  c.lane = lane;
  ++c.fired;
}

void TriggerStats::Opened(const std::string& trigger, const std::string& lane) {
  Counts& c = counts_[trigger];
  c.lane = lane;
  ++c.open;
}

void TriggerStats::Closed(const std::string& trigger, v1::CaseState state,
                          absl::Duration time_to_decision) {
  Counts& c = counts_[trigger];
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

void TriggerStats::Fill(const engine::Matrix* matrix, v1::GetStatsResponse* out) const {
  auto add = [&](const std::string& id, absl::string_view lane) {
    v1::TriggerStats& s = *out->add_triggers();
    s.set_trigger_id(id);
    s.set_lane(std::string(lane));
    auto it = counts_.find(id);
    if (it != counts_.end()) it->second.FillInto(&s);
  };
  absl::flat_hash_set<std::string> listed;
  if (matrix != nullptr) {
    for (const engine::Trigger& t : matrix->triggers()) {
      add(t.id, matrix->lanes()[t.lane].name);
      listed.insert(t.id);
    }
  }
  std::vector<std::string> others;
  for (const auto& [id, counts] : counts_) {
    if (!listed.contains(id)) others.push_back(id);
  }
  std::sort(others.begin(), others.end());
  for (const std::string& id : others) add(id, "");
}

std::vector<store::v1::StoredTriggerStats> TriggerStats::Stored(
    const absl::flat_hash_set<std::string>& triggers) const {
  std::vector<store::v1::StoredTriggerStats> out;
  for (const std::string& id : triggers) {
    auto it = counts_.find(id);
    if (it == counts_.end()) continue;
    store::v1::StoredTriggerStats& stored = out.emplace_back();
    stored.mutable_stats()->set_trigger_id(id);
    it->second.FillInto(stored.mutable_stats());
    for (int64_t ms : it->second.decision_ms) stored.add_decision_ms(ms);
  }
  return out;
}

void TriggerStats::Restore(const std::vector<store::v1::StoredTriggerStats>& stored) {
  counts_.clear();
  for (const store::v1::StoredTriggerStats& s : stored) {
    const v1::TriggerStats& stats = s.stats();
    Counts& c = counts_[stats.trigger_id()];
    c.lane = stats.lane();
    c.fired = stats.fired();
    c.open = stats.open();
    c.approved = stats.approved();
    c.rejected = stats.rejected();
    c.resolved = stats.resolved();
    c.expired = stats.expired();
    c.decision_ms.assign(s.decision_ms().begin(), s.decision_ms().end());
  }
}

}  // namespace agate::cases
