#include "service/shadow_report.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/json_string.h"
#include "common/proto_time.h"
#include "engine/verdict.h"

namespace agate::service {
namespace {

// Rounded is a span as a person reads it: whole seconds, or milliseconds under a second (a live
// report's span is measured to the nanosecond).
absl::Duration Rounded(absl::Duration span) {
  return absl::Trunc(span, span >= absl::Seconds(1) ? absl::Seconds(1) : absl::Milliseconds(1));
}

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

void ShadowReport::Observed(absl::Time at) {
  ++requests_;
  first_ = std::min(first_, at);
  last_ = std::max(last_, at);
}

void ShadowReport::Add(const v1::EvaluateRequest& request, absl::Time at,
                       absl::StatusOr<const v1::EvaluateResponse*> live,
                       absl::StatusOr<const v1::EvaluateResponse*> candidate) {
  Observed(at);
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
  Compare(request, (*live)->verdict(), **live, **candidate);
}

void ShadowReport::AddLive(const v1::EvaluateRequest& request, absl::Time at,
                           const v1::EvaluateResponse& live, const v1::EvaluateResponse& candidate,
                           const std::vector<std::string>& live_opened,
                           const std::vector<std::string>& candidate_opened) {
  Observed(at);
  // The live matrix's own verdict: the most restrictive lane its fired triggers name (the answer's
  // verdict unless case state changed it).
  v1::Verdict matrix_verdict = v1::VERDICT_ALLOW;
  for (const v1::FiredTrigger& f : live.fired()) {
    matrix_verdict = std::max(matrix_verdict, f.verdict());
  }
  if (live.verdict() == v1::VERDICT_ALLOW && live.fired_size() > 0) {
    ++redemptions_;  // only a redemption answers ALLOW to fired triggers
  } else if (live.verdict() != matrix_verdict) {
    ++imposed_;
  }
  for (const std::string& lane : live_opened) ++sides_[kLive].escalations[lane];
  for (const std::string& lane : candidate_opened) ++sides_[kCandidate].escalations[lane];
  Compare(request, matrix_verdict, live, candidate);
}

void ShadowReport::AddUnchangedAllows(int64_t n) {
  if (n <= 0) return;
  requests_ += n;
  transitions_[{v1::VERDICT_ALLOW, v1::VERDICT_ALLOW}] += n;
}

void ShadowReport::Compare(const v1::EvaluateRequest& request, v1::Verdict live_verdict,
                           const v1::EvaluateResponse& live,
                           const v1::EvaluateResponse& candidate) {
  const std::pair<v1::Verdict, v1::Verdict> pair = {live_verdict, candidate.verdict()};
  ++transitions_[pair];
  if (pair.first != pair.second) {
    ++changed_;
    std::vector<std::string>& samples = transition_samples_[pair];
    if (samples.size() < kSamples) samples.push_back(request.request_id());
  }
  if (live.fired_size() == 0 && candidate.fired_size() == 0) return;
  const std::vector<std::string> was = Fired(live);
  const std::vector<std::string> now = Fired(candidate);
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

std::vector<ShadowReport::LaneForecast> ShadowReport::Forecast(absl::Duration span,
                                                               const Measured* measured) const {
  std::vector<LaneForecast> rows;
  for (const engine::Lane& lane : candidate_matrix_->lanes()) {
    LaneForecast row{.lane = lane.name, .owner = lane.owner, .sla = lane.sla};
    auto live = sides_[kLive].escalations.find(lane.name);
    if (live != sides_[kLive].escalations.end()) row.live_escalations = live->second;
    auto candidate = sides_[kCandidate].escalations.find(lane.name);
    if (candidate != sides_[kCandidate].escalations.end()) row.escalations = candidate->second;
    row.time_per_case = lane.sla;
    if (measured != nullptr) {
      if (auto t = measured->median_time_to_decision.find(lane.name);
          t != measured->median_time_to_decision.end() && t->second > absl::ZeroDuration()) {
        row.time_per_case = t->second;
        row.time_measured = true;
      }
      if (auto b = measured->backlog.find(lane.owner); b != measured->backlog.end()) {
        row.backlog = b->second;
      }
    }
    if (span > absl::ZeroDuration()) {
      row.per_hour = static_cast<double>(row.escalations) / Hours(span);
      row.review_hours_per_day = row.per_hour * 24 * Hours(row.time_per_case);
    }
    // One SLA window after the rollout: the backlog and the window's new cases against the cases
    // the group decides in it, one per time_per_case (docs/matrix.md, "The workload forecast").
    if (row.time_per_case > absl::ZeroDuration()) {
      const double arriving = row.per_hour * Hours(lane.sla);
      const double capacity = absl::FDivDuration(lane.sla, row.time_per_case);
      row.expected_sla_breaches =
          std::max(0.0, static_cast<double>(row.backlog) + arriving - capacity);
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

v1::ShadowReport ShadowReport::ToProto(absl::Duration span, const Measured* measured) const {
  v1::ShadowReport out;
  out.set_requests(requests_);
  out.set_changed(changed_);
  out.set_refused_live(sides_[kLive].refused);
  out.set_refused_candidate(sides_[kCandidate].refused);
  if (sides_[kLive].refused > 0) {
    out.set_first_refusal_live(
        absl::StrCat(absl::StatusCodeToString(sides_[kLive].first_refusal.code()), ": ",
                     sides_[kLive].first_refusal.message()));
  }
  if (sides_[kCandidate].refused > 0) {
    const absl::Status& first = sides_[kCandidate].first_refusal;
    out.set_first_refusal_candidate(
        absl::StrCat(absl::StatusCodeToString(first.code()), ": ", first.message()));
  }
  *out.mutable_span() = ToDurationProto(span);
  out.set_live_matrix_version(live_matrix_->version());
  out.set_candidate_matrix_version(candidate_matrix_->version());
  out.set_redemptions(redemptions_);
  out.set_imposed(imposed_);
  for (const auto& [pair, count] : transitions_) {
    v1::ShadowTransition& t = *out.add_transitions();
    t.set_live(pair.first);
    t.set_shadow(pair.second);
    t.set_count(count);
    if (auto s = transition_samples_.find(pair); s != transition_samples_.end()) {
      for (const std::string& id : s->second) t.add_samples(id);
    }
  }
  for (const TriggerChange& change : TopTriggers(triggers_.size())) {
    v1::ShadowTriggerChange& t = *out.add_triggers();
    t.set_trigger_id(change.trigger_id);
    t.set_newly_fires(change.newly_fires);
    t.set_stops_firing(change.stops_firing);
    for (const std::string& id : change.samples) t.add_samples(id);
  }
  for (const LaneForecast& f : Forecast(span, measured)) {
    v1::ShadowLaneForecast& row = *out.add_forecast();
    row.set_lane(f.lane);
    row.set_owner(f.owner);
    *row.mutable_sla() = ToDurationProto(f.sla);
    row.set_live_escalations(f.live_escalations);
    row.set_escalations(f.escalations);
    row.set_per_hour(f.per_hour);
    *row.mutable_time_per_case() = ToDurationProto(f.time_per_case);
    row.set_time_measured(f.time_measured);
    row.set_review_hours_per_day(f.review_hours_per_day);
    row.set_backlog(f.backlog);
    row.set_expected_sla_breaches(f.expected_sla_breaches);
  }
  return out;
}

std::string ShadowReport::RenderText(const v1::ShadowReport& report) {
  const int64_t requests = report.requests();
  const int64_t changed = report.changed();
  std::string out =
      absl::StrFormat("%d requests: %d changed verdict (%.1f%%)", requests, changed,
                      requests == 0 ? 0.0 : 100.0 * static_cast<double>(changed) / requests);
  if (report.refused_live() + report.refused_candidate() > 0) {
    absl::StrAppend(&out, "; refused: ", report.refused_live(), " live, ",
                    report.refused_candidate(), " candidate");
  }
  if (report.refused_live() > 0) {
    absl::StrAppend(&out, "\n  first refused by the live matrix: ", report.first_refusal_live());
  }
  if (report.refused_candidate() > 0) {
    absl::StrAppend(
        &out, "\n  first refused by the candidate matrix: ", report.first_refusal_candidate());
  }
  if (report.has_since()) {
    absl::StrAppend(
        &out, "\nlive matrix ", report.live_matrix_version(), ", candidate ",
        report.candidate_matrix_version(), ", since ",
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", FromTimestamp(report.since()), absl::UTCTimeZone()));
    absl::StrAppend(&out, "; ", report.redemptions(), " redemptions and ", report.imposed(),
                    " verdicts imposed by case state compared by the live matrix's own verdict");
  }
  out += "\n\nverdicts (live -> candidate):\n";
  std::vector<const v1::ShadowTransition*> rows;
  for (const v1::ShadowTransition& t : report.transitions()) rows.push_back(&t);
  // Changes first, most frequent first; then what stayed.
  std::stable_sort(rows.begin(), rows.end(), [](const auto* a, const auto* b) {
    const bool a_changed = a->live() != a->shadow();
    const bool b_changed = b->live() != b->shadow();
    if (a_changed != b_changed) return a_changed;
    return a->count() > b->count();
  });
  for (const v1::ShadowTransition* t : rows) {
    absl::StrAppendFormat(&out, "  %-9s -> %-9s %8d%s\n", engine::VerdictName(t->live()),
                          engine::VerdictName(t->shadow()), t->count(),
                          t->live() == t->shadow()
                              ? "  (unchanged)"
                              : absl::StrCat("  e.g. ", absl::StrJoin(t->samples(), ", ")));
  }
  out += "\ntriggers that changed (decisions where the candidate newly fires / stops firing it):\n";
  if (report.triggers().empty()) out += "  none\n";
  for (int i = 0; i < report.triggers_size() && static_cast<size_t>(i) < kTopTriggers; ++i) {
    const v1::ShadowTriggerChange& t = report.triggers(i);
    absl::StrAppendFormat(&out, "  %-32s +%d -%d  e.g. %s\n", t.trigger_id(), t.newly_fires(),
                          t.stops_firing(), absl::StrJoin(t.samples(), ", "));
  }
  const bool measured = std::any_of(report.forecast().begin(), report.forecast().end(),
                                    [](const auto& f) { return f.time_measured(); });
  absl::StrAppendFormat(
      &out,
      "\nworkload forecast over %s (cases opened; review hours take %s; breaches: the "
      "first SLA window after a rollout, given the owners' open cases):\n",
      absl::FormatDuration(Rounded(FromDurationProto(report.span()))),
      measured ? "each lane's measured median time to decision, or its SLA (*) where none is known"
               : "each lane's SLA (*) as the time per case: no measured medians, an upper bound");
  absl::StrAppendFormat(&out, "  %-12s %-20s %6s %9s %6s %9s %6s %9s %12s %7s %8s\n", "LANE",
                        "OWNER", "LIVE", "CANDIDATE", "DELTA", "PER-HOUR", "SLA", "PER-CASE",
                        "REVIEW-H/DAY", "BACKLOG", "BREACHES");
  for (const v1::ShadowLaneForecast& f : report.forecast()) {
    absl::StrAppendFormat(&out, "  %-12s %-20s %6d %9d %6s %9.1f %6s %9s %12.1f %7d %8.1f\n",
                          f.lane(), f.owner(), f.live_escalations(), f.escalations(),
                          SignedCount(static_cast<int64_t>(f.escalations()) -
                                      static_cast<int64_t>(f.live_escalations())),
                          f.per_hour(), absl::FormatDuration(FromDurationProto(f.sla())),
                          absl::StrCat(absl::FormatDuration(FromDurationProto(f.time_per_case())),
                                       f.time_measured() ? "" : "*"),
                          f.review_hours_per_day(), f.backlog(), f.expected_sla_breaches());
  }
  return out;
}

std::string ShadowReport::RenderJson(const v1::ShadowReport& report) {
  std::string out =
      absl::StrCat("{\"requests\":", report.requests(), ",\"changed\":", report.changed(),
                   ",\"refused\":{\"live\":", report.refused_live(),
                   ",\"candidate\":", report.refused_candidate(),
                   "},\"span_seconds\":", absl::ToDoubleSeconds(FromDurationProto(report.span())),
                   ",\"redemptions\":", report.redemptions(), ",\"imposed\":", report.imposed(),
                   ",\"transitions\":[");
  auto strings = [&out](const auto& list) {
    out += "[";
    for (int i = 0; i < list.size(); ++i) {
      if (i > 0) out += ",";
      AppendJsonString(list[i], &out);
    }
    out += "]";
  };
  bool first = true;
  for (const v1::ShadowTransition& t : report.transitions()) {
    absl::StrAppend(&out, first ? "" : ",", "{\"live\":\"", v1::Verdict_Name(t.live()),
                    "\",\"shadow\":\"", v1::Verdict_Name(t.shadow()), "\",\"count\":", t.count(),
                    ",\"samples\":");
    strings(t.samples());
    out += "}";
    first = false;
  }
  out += "],\"triggers\":[";
  first = true;
  for (const v1::ShadowTriggerChange& t : report.triggers()) {
    absl::StrAppend(&out, first ? "" : ",", "{\"trigger_id\":");
    AppendJsonString(t.trigger_id(), &out);
    absl::StrAppend(&out, ",\"newly_fires\":", t.newly_fires(),
                    ",\"stops_firing\":", t.stops_firing(), ",\"samples\":");
    strings(t.samples());
    out += "}";
    first = false;
  }
  out += "],\"forecast\":[";
  first = true;
  for (const v1::ShadowLaneForecast& f : report.forecast()) {
    absl::StrAppend(&out, first ? "" : ",", "{\"lane\":");
    AppendJsonString(f.lane(), &out);
    out += ",\"owner\":";
    AppendJsonString(f.owner(), &out);
    absl::StrAppend(
        &out, ",\"sla_seconds\":", absl::ToDoubleSeconds(FromDurationProto(f.sla())),
        ",\"live_escalations\":", f.live_escalations(), ",\"escalations\":", f.escalations(),
        ",\"per_hour\":", absl::StrFormat("%.6g", f.per_hour()),
        ",\"time_per_case_seconds\":", absl::ToDoubleSeconds(FromDurationProto(f.time_per_case())),
        ",\"time_measured\":", f.time_measured() ? "true" : "false",
        ",\"review_hours_per_day\":", absl::StrFormat("%.6g", f.review_hours_per_day()),
        ",\"backlog\":", f.backlog(),
        ",\"expected_sla_breaches\":", absl::StrFormat("%.6g", f.expected_sla_breaches()), "}");
    first = false;
  }
  out += "]";
  if (report.has_since()) {
    out += ",\"live_matrix_version\":";
    AppendJsonString(report.live_matrix_version(), &out);
    out += ",\"candidate_matrix_version\":";
    AppendJsonString(report.candidate_matrix_version(), &out);
    absl::StrAppend(
        &out, ",\"since\":\"",
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", FromTimestamp(report.since()), absl::UTCTimeZone()),
        "\"");
  }
  out += "}";
  return out;
}

}  // namespace agate::service
