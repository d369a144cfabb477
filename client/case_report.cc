#include "client/case_report.h"

#include <algorithm>
#include <iterator>
#include <memory>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/client.h"
#include "client/grpc_status.h"
#include "common/duration.h"
#include "common/json_string.h"
#include "common/proto_time.h"

namespace agate::client {
namespace {

bool IsDecided(v1::CaseState state) {
  return state == v1::CASE_STATE_APPROVED || state == v1::CASE_STATE_REJECTED ||
         state == v1::CASE_STATE_RESOLVED;
}

// DecisionTime returns when c was approved, rejected or resolved: its first transition into
// that state (a redemption later adds another APPROVED line).
std::optional<absl::Time> DecisionTime(const v1::Case& c) {
  if (!IsDecided(c.state())) return std::nullopt;
  for (const v1::Transition& t : c.history()) {
    if (t.state() == c.state()) return FromTimestamp(t.time());
  }
  return std::nullopt;  // the history kept no such line (it keeps the newest 20)
}

// Counter is the count a case in state adds to (an unknown state counts as open).
int64_t TriggerOutcome::*Counter(v1::CaseState state) {
  static constexpr int64_t TriggerOutcome::*kByState[] = {
      &TriggerOutcome::open,      // CASE_STATE_UNSPECIFIED
      &TriggerOutcome::open,      // CASE_STATE_OPEN
      &TriggerOutcome::approved,  // CASE_STATE_APPROVED
      &TriggerOutcome::rejected,  // CASE_STATE_REJECTED
      &TriggerOutcome::resolved,  // CASE_STATE_RESOLVED
      &TriggerOutcome::expired,   // CASE_STATE_EXPIRED
  };
  const size_t i = static_cast<size_t>(state);
  return i < std::size(kByState) ? kByState[i] : &TriggerOutcome::open;
}

std::string Percent(std::optional<double> rate) {
  return rate.has_value() ? absl::StrFormat("%.1f%%", *rate * 100) : "-";
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

std::string MedianText(const TriggerOutcome& t) {
  return t.median_time_to_decision.has_value()
             ? absl::FormatDuration(absl::Trunc(*t.median_time_to_decision, absl::Milliseconds(1)))
             : "-";
}

}  // namespace

std::optional<double> TriggerOutcome::approval_rate() const {
  const int64_t decided = approved + rejected;
  if (decided == 0) return std::nullopt;
  return static_cast<double>(approved) / static_cast<double>(decided);
}

bool TriggerOutcome::relax_candidate() const {
  // approved / decided > 95%, in integers: 100 * approved > 95 * decided.
  const int64_t decided = approved + rejected;
  return decided >= kRelaxMinCases && 100 * approved > 95 * decided;
}

bool CaseReportBuilder::Add(const v1::Case& c) {
  const absl::Time opened = FromTimestamp(c.opened_at());
  // A case the server opened after `to` (its clock ahead of ours) is in the window too.
  if (opened < from_) return false;
  ++cases_;
  const std::optional<absl::Time> decided = DecisionTime(c);
  std::set<std::string> counted;
  for (const v1::FiredTrigger& f : c.fired()) {
    Counts& counts = by_trigger_[{c.lane(), f.trigger_id()}];
    TriggerOutcome& t = counts.outcome;
    t.trigger_id = f.trigger_id();
    t.lane = c.lane();
    ++t.fired;
    if (!counted.insert(f.trigger_id()).second) continue;  // the case counts once per trigger
    ++t.cases;
    ++(t.*Counter(c.state()));
    if (decided.has_value()) counts.decision_times.push_back(*decided - opened);
  }
  return true;
}

CaseReport CaseReportBuilder::Build() const {
  CaseReport report{.from = from_, .to = to_, .cases = cases_, .triggers = {}};
  for (const auto& [key, counts] : by_trigger_) {
    TriggerOutcome t = counts.outcome;
    if (!counts.decision_times.empty()) {
      std::vector<absl::Duration> times = counts.decision_times;
      std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
      t.median_time_to_decision = times[times.size() / 2];
    }
    report.triggers.push_back(std::move(t));
  }
  return report;
}

std::string CaseReport::Text() const {
  std::string out =
      absl::StrFormat("%d cases opened from %s to %s\n", cases, Rfc3339(from), Rfc3339(to));
  if (triggers.empty()) return out + "no trigger fired in a case of the window\n";
  absl::StrAppendFormat(&out, "%-32s %-10s %6s %6s %5s %8s %8s %8s %7s %8s %s\n", "TRIGGER", "LANE",
                        "FIRED", "CASES", "OPEN", "APPROVED", "REJECTED", "RESOLVED", "EXPIRED",
                        "APPROVAL", "MEDIAN-TIME-TO-DECISION");
  for (const TriggerOutcome& t : triggers) {
    absl::StrAppendFormat(&out, "%-32s %-10s %6d %6d %5d %8d %8d %8d %7d %8s %s\n", t.trigger_id,
                          t.lane, t.fired, t.cases, t.open, t.approved, t.rejected, t.resolved,
                          t.expired, Percent(t.approval_rate()), MedianText(t));
  }
  std::vector<std::string> candidates;
  for (const TriggerOutcome& t : triggers) {
    if (!t.relax_candidate()) continue;
    candidates.push_back(absl::StrFormat(
        "  %s (lane %s): approved %d of %d approved or rejected cases (%s), median time to "
        "decision %s",
        t.trigger_id, t.lane, t.approved, t.approved + t.rejected, Percent(t.approval_rate()),
        MedianText(t)));
  }
  absl::StrAppendFormat(&out,
                        "\ncandidates to relax (approved in more than %.0f%% of at least %d "
                        "approved or rejected cases):%s\n",
                        kRelaxRate * 100, kRelaxMinCases, candidates.empty() ? " none" : "");
  for (const std::string& c : candidates) absl::StrAppend(&out, c, "\n");
  return out;
}

std::string CaseReport::Json() const {
  std::string out = absl::StrCat(R"({"from":")", Rfc3339(from), R"(","to":")", Rfc3339(to),
                                 R"(","cases":)", cases, R"(,"triggers":[)");
  std::vector<std::string> candidates;
  for (size_t i = 0; i < triggers.size(); ++i) {
    const TriggerOutcome& t = triggers[i];
    if (i > 0) out += ",";
    out += R"({"trigger_id":)";
    AppendJsonString(t.trigger_id, &out);
    out += R"(,"lane":)";
    AppendJsonString(t.lane, &out);
    const std::optional<double> rate = t.approval_rate();
    absl::StrAppend(&out, R"(,"fired":)", t.fired, R"(,"cases":)", t.cases, R"(,"open":)", t.open,
                    R"(,"approved":)", t.approved, R"(,"rejected":)", t.rejected, R"(,"resolved":)",
                    t.resolved, R"(,"expired":)", t.expired, R"(,"approval_rate":)",
                    rate.has_value() ? absl::StrFormat("%.4f", *rate) : "null",
                    R"(,"median_time_to_decision_seconds":)",
                    t.median_time_to_decision.has_value()
                        ? absl::StrFormat("%.3f", absl::ToDoubleSeconds(*t.median_time_to_decision))
                        : "null",
                    R"(,"relax_candidate":)", t.relax_candidate() ? "true" : "false", "}");
    if (t.relax_candidate()) {
      std::string id;
      AppendJsonString(t.trigger_id, &id);
      candidates.push_back(std::move(id));
    }
  }
  absl::StrAppend(&out, R"(],"relax_candidates":[)", absl::StrJoin(candidates, ","), "]}");
  return out;
}

absl::StatusOr<absl::Duration> ParseSince(absl::string_view text) {
  absl::StatusOr<absl::Duration> d = ParseDuration(text);
  if (!d.ok()) return absl::InvalidArgumentError(absl::StrCat("--since: ", d.status().message()));
  return *d;
}

absl::StatusOr<CaseReport> FetchCaseReport(Client& client, absl::Duration since, absl::Time now,
                                           int page_size) {
  CaseReportBuilder builder(now - since, now);
  v1::ListCasesRequest request;
  request.set_page_size(page_size);
  for (;;) {
    std::unique_ptr<grpc::ClientContext> context = client.NewContext();
    v1::ListCasesResponse page;
    const absl::Status status =
        FromGrpcStatus(client.stub().ListCases(context.get(), request, &page));
    if (!status.ok()) return status;
    for (const v1::Case& c : page.cases()) {
      if (!builder.Add(c)) return builder.Build();
    }
    if (page.next_page_token().empty()) return builder.Build();
    request.set_page_token(page.next_page_token());
  }
}

}  // namespace agate::client
