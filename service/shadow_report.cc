#include "service/shadow_report.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/json_string.h"
#include "engine/verdict.h"

namespace agate::service {
namespace {

constexpr size_t kSamples = 3;
constexpr size_t kTopTriggers = 10;
constexpr int kLive = 0;
constexpr int kCandidate = 1;

// Fired returns the ids of the triggers response fired, sorted and distinct.
std::vector<std::string> Fired(const v1::EvaluateResponse& response) {
  std::vector<std::string> ids;
  ids.reserve(response.fired_size());
  for (const v1::FiredTrigger& f : response.fired()) ids.push_back(f.trigger_id());
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

std::string SignedCount(int64_t n) { return n > 0 ? absl::StrCat("+", n) : absl::StrCat(n); }

double Hours(absl::Duration d) { return absl::ToDoubleHours(d); }

}  // namespace

ShadowReport::ShadowReport(std::shared_ptr<const engine::Matrix> live,
                           std::shared_ptr<const engine::Matrix> candidate)
    : live_matrix_(std::move(live)),
      candidate_matrix_(std::move(candidate)),
      sides_{Side{.matrix = live_matrix_.get()}, Side{.matrix = candidate_matrix_.get()}} {}

void ShadowReport::CountCases(const v1::EvaluateResponse& response, Side* side) {
  if (response.verdict() == v1::VERDICT_ALLOW) return;  // nothing, or a redemption
  // case_ids follow the fired lanes in the order they first fired (cases/case_store.h).
  std::vector<absl::string_view> lanes;
  for (const v1::FiredTrigger& f : response.fired()) {
    if (std::find(lanes.begin(), lanes.end(), f.lane()) == lanes.end()) lanes.push_back(f.lane());
  }
  const size_t n = std::min<size_t>(lanes.size(), response.case_ids_size());
  for (size_t i = 0; i < n; ++i) {
    if (side->cases.insert(response.case_ids(i)).second) ++side->escalations[lanes[i]];
  }
}

void ShadowReport::Add(const v1::EvaluateRequest& request, absl::Time at,
                       absl::StatusOr<const v1::EvaluateResponse*> live,
                       absl::StatusOr<const v1::EvaluateResponse*> candidate) {
  ++requests_;
  first_ = std::min(first_, at);
  last_ = std::max(last_, at);
  const std::array<const absl::StatusOr<const v1::EvaluateResponse*>*, 2> decided = {&live,
                                                                                     &candidate};
  for (int s : {kLive, kCandidate}) {
    if (!decided[s]->ok()) {
      if (sides_[s].refused++ == 0) sides_[s].first_refusal = decided[s]->status();
    } else {
      CountCases(***decided[s], &sides_[s]);
    }
  }
  if (!live.ok() || !candidate.ok()) return;
  ++transitions_[{(*live)->verdict(), (*candidate)->verdict()}];
  if ((*live)->verdict() != (*candidate)->verdict()) ++changed_;
  const std::vector<std::string> was = Fired(**live);
  const std::vector<std::string> now = Fired(**candidate);
  if (was == now) return;
  auto note = [&](const std::string& id, bool newly) {
    TriggerChange& change = triggers_[id];
    change.trigger_id = id;
    ++(newly ? change.newly_fires : change.stops_firing);
    if (change.samples.size() < kSamples) change.samples.push_back(request.request_id());
  };
  for (const std::string& id : now) {
    if (!std::binary_search(was.begin(), was.end(), id)) note(id, true);
  }
  for (const std::string& id : was) {
    if (!std::binary_search(now.begin(), now.end(), id)) note(id, false);
  }
}

absl::Duration ShadowReport::observed_span() const {
  return requests_ < 2 ? absl::ZeroDuration() : last_ - first_;
}

std::vector<ShadowReport::TriggerChange> ShadowReport::TopTriggers(size_t n) const {
  std::vector<TriggerChange> top;
  for (const auto& [id, change] : triggers_) top.push_back(change);
  std::stable_sort(top.begin(), top.end(), [](const TriggerChange& a, const TriggerChange& b) {
    return a.newly_fires + a.stops_firing > b.newly_fires + b.stops_firing;
  });
  if (top.size() > n) top.resize(n);
  return top;
}

std::vector<ShadowReport::LaneForecast> ShadowReport::Forecast(absl::Duration span) const {
  std::vector<LaneForecast> rows;
  for (const engine::Lane& lane : candidate_matrix_->lanes()) {
    LaneForecast row{.lane = lane.name, .owner = lane.owner, .sla = lane.sla};
    auto live = sides_[kLive].escalations.find(lane.name);
    if (live != sides_[kLive].escalations.end()) row.live_escalations = live->second;
    auto candidate = sides_[kCandidate].escalations.find(lane.name);
    if (candidate != sides_[kCandidate].escalations.end()) row.escalations = candidate->second;
    if (span > absl::ZeroDuration()) {
      row.per_hour = static_cast<double>(row.escalations) / Hours(span);
      row.review_hours_per_day = row.per_hour * 24 * Hours(lane.sla);
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string ShadowReport::Text(absl::Duration span) const {
  std::string out =
      absl::StrFormat("%d requests: %d changed verdict (%.1f%%)", requests_, changed_,
                      requests_ == 0 ? 0.0 : 100.0 * static_cast<double>(changed_) / requests_);
  if (sides_[kLive].refused + sides_[kCandidate].refused > 0) {
    absl::StrAppend(&out, "; refused: ", sides_[kLive].refused, " live, ",
                    sides_[kCandidate].refused, " candidate");
  }
  for (int s : {kLive, kCandidate}) {
    if (sides_[s].refused == 0) continue;
    const absl::Status& first = sides_[s].first_refusal;
    absl::StrAppend(&out, "\n  first refused by the ", s == kLive ? "live" : "candidate",
                    " matrix: ", absl::StatusCodeToString(first.code()), ": ", first.message());
  }
  out += "\n\nverdicts (live -> candidate):\n";
  std::vector<std::pair<std::pair<v1::Verdict, v1::Verdict>, int64_t>> pairs(transitions_.begin(),
                                                                             transitions_.end());
  // Changes first, most frequent first; then what stayed.
  std::stable_sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) {
    const bool a_changed = a.first.first != a.first.second;
    const bool b_changed = b.first.first != b.first.second;
    if (a_changed != b_changed) return a_changed;
    return a.second > b.second;
  });
  for (const auto& [pair, count] : pairs) {
    absl::StrAppendFormat(&out, "  %-9s -> %-9s %8d%s\n", engine::VerdictName(pair.first),
                          engine::VerdictName(pair.second), count,
                          pair.first == pair.second ? "  (unchanged)" : "");
  }
  const std::vector<TriggerChange> top = TopTriggers(kTopTriggers);
  out += "\ntriggers that changed (decisions where the candidate newly fires / stops firing it):\n";
  if (top.empty()) out += "  none\n";
  for (const TriggerChange& t : top) {
    absl::StrAppendFormat(&out, "  %-32s +%d -%d  e.g. %s\n", t.trigger_id, t.newly_fires,
                          t.stops_firing, absl::StrJoin(t.samples, ", "));
  }
  absl::StrAppendFormat(
      &out,
      "\nworkload forecast over %s (cases opened; review hours take each lane's SLA as the time "
      "per case: offline there are no measured medians, so they are an upper bound):\n",
      absl::FormatDuration(span));
  absl::StrAppendFormat(&out, "  %-12s %-20s %6s %9s %6s %9s %6s %12s\n", "LANE", "OWNER", "LIVE",
                        "CANDIDATE", "DELTA", "PER-HOUR", "SLA", "REVIEW-H/DAY");
  for (const LaneForecast& f : Forecast(span)) {
    absl::StrAppendFormat(&out, "  %-12s %-20s %6d %9d %6s %9.1f %6s %12.1f\n", f.lane, f.owner,
                          f.live_escalations, f.escalations,
                          SignedCount(f.escalations - f.live_escalations), f.per_hour,
                          absl::FormatDuration(f.sla), f.review_hours_per_day);
  }
  return out;
}

std::string ShadowReport::Json(absl::Duration span) const {
  std::string out =
      absl::StrCat("{\"requests\":", requests_, ",\"changed\":", changed_,
                   ",\"refused\":{\"live\":", sides_[kLive].refused,
                   ",\"candidate\":", sides_[kCandidate].refused,
                   "},\"span_seconds\":", absl::ToDoubleSeconds(span), ",\"transitions\":[");
  bool first = true;
  for (const auto& [pair, count] : transitions_) {
    absl::StrAppend(&out, first ? "" : ",", "{\"live\":\"", v1::Verdict_Name(pair.first),
                    "\",\"shadow\":\"", v1::Verdict_Name(pair.second), "\",\"count\":", count, "}");
    first = false;
  }
  out += "],\"triggers\":[";
  first = true;
  for (const TriggerChange& t : TopTriggers(triggers_.size())) {
    absl::StrAppend(&out, first ? "" : ",", "{\"trigger_id\":");
    AppendJsonString(t.trigger_id, &out);
    absl::StrAppend(&out, ",\"newly_fires\":", t.newly_fires, ",\"stops_firing\":", t.stops_firing,
                    ",\"samples\":[");
    for (size_t i = 0; i < t.samples.size(); ++i) {
      if (i > 0) out += ",";
      AppendJsonString(t.samples[i], &out);
    }
    out += "]}";
    first = false;
  }
  out += "],\"forecast\":[";
  first = true;
  for (const LaneForecast& f : Forecast(span)) {
    absl::StrAppend(&out, first ? "" : ",", "{\"lane\":");
    AppendJsonString(f.lane, &out);
    out += ",\"owner\":";
    AppendJsonString(f.owner, &out);
    absl::StrAppend(
        &out, ",\"sla_seconds\":", absl::ToDoubleSeconds(f.sla),
        ",\"live_escalations\":", f.live_escalations, ",\"escalations\":", f.escalations,
        ",\"per_hour\":", absl::StrFormat("%.6g", f.per_hour),
        ",\"review_hours_per_day\":", absl::StrFormat("%.6g", f.review_hours_per_day), "}");
    first = false;
  }
  out += "]}";
  return out;
}

}  // namespace agate::service
