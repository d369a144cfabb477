// ShadowReport: what a candidate matrix would change if it replaced the live one, from pairs of
// decisions on the same requests — the verdict changes, the triggers that newly fire or stop
// firing, and the human workload the candidate would create per lane.
//
// The report is an accumulator: Add takes one request with the live matrix's decision and the
// candidate's (each from a Service of its own, so cases and count() windows evolve per matrix),
// and Text / Json render what was added. `agate shadow` feeds it offline
// (client/offline_eval.h: RunOfflineShadow); it lives in service/ so that a server running a
// candidate in shadow mode can feed it the same pairs as they happen.
//
// Escalations are cases: the distinct case ids a matrix's decisions opened or joined, each
// attributed to its lane (a decision's case_ids follow its fired lanes in order). A redemption
// (an ALLOW naming an approved case) opens nothing. Review hours per day take each lane's SLA as
// the time a case costs: offline there are no measured times to decision, so it is an upper
// bound, not a median.
//
// Thread-compatible.
//
// Example:
//   ShadowReport report(live_matrix, candidate_matrix);
//   report.Add(request, at, &live_response, &candidate_response);  // or a side's error status
//   std::cout << report.Text(absl::Hours(1));
#ifndef AGATE_SERVICE_SHADOW_REPORT_H_
#define AGATE_SERVICE_SHADOW_REPORT_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agate/v1/agate.pb.h"
#include "engine/matrix.h"

namespace agate::service {

class ShadowReport {
 public:
  // One row of the workload forecast: a lane of the candidate.
  struct LaneForecast {
    std::string lane;
    std::string owner;
    absl::Duration sla;
    int64_t live_escalations = 0;  // cases of the live lane of the same name (0 if none)
    int64_t escalations = 0;       // cases of the candidate's lane
    double per_hour = 0;           // escalations per hour of the span
    double review_hours_per_day = 0;
  };
  // One trigger whose firing changed.
  struct TriggerChange {
    std::string trigger_id;
    int64_t newly_fires = 0;           // decisions where the candidate fires it and live does not
    int64_t stops_firing = 0;          // decisions where live fires it and the candidate does not
    std::vector<std::string> samples;  // up to 3 request ids
  };

  // live and candidate must not be null; they name the lanes' owners and SLAs.
  ShadowReport(std::shared_ptr<const engine::Matrix> live,
               std::shared_ptr<const engine::Matrix> candidate);

  // Add records one request decided at `at` by both matrices. A side given a status instead of
  // a response refused the request: counted (the first refusal's message is kept for the
  // report), not compared.
  void Add(const v1::EvaluateRequest& request, absl::Time at,
           absl::StatusOr<const v1::EvaluateResponse*> live,
           absl::StatusOr<const v1::EvaluateResponse*> candidate);

  int64_t requests() const { return requests_; }
  // changed counts the requests both sides decided with different verdicts.
  int64_t changed() const { return changed_; }
  // The span between the first and the last request added (zero before two).
  absl::Duration observed_span() const;
  // Transitions returns (live verdict, candidate verdict) -> requests, for every pair seen.
  const std::map<std::pair<v1::Verdict, v1::Verdict>, int64_t>& transitions() const {
    return transitions_;
  }
  // TopTriggers returns up to n changed triggers, most changed decisions first.
  std::vector<TriggerChange> TopTriggers(size_t n) const;
  // Forecast returns a row per candidate lane, in matrix order; rates are over span (none when
  // span is not positive).
  std::vector<LaneForecast> Forecast(absl::Duration span) const;

  // Text renders the report for people; Json as one JSON object (docs/matrix.md lists its
  // fields). Rates are over span.
  std::string Text(absl::Duration span) const;
  std::string Json(absl::Duration span) const;

 private:
  struct Side {
    const engine::Matrix* matrix;
    absl::flat_hash_set<std::string> cases;
    absl::flat_hash_map<std::string, int64_t> escalations;  // by lane
    int64_t refused = 0;
    absl::Status first_refusal;
  };
  static void CountCases(const v1::EvaluateResponse& response, Side* side);

  std::shared_ptr<const engine::Matrix> live_matrix_;
  std::shared_ptr<const engine::Matrix> candidate_matrix_;
  std::array<Side, 2> sides_;  // live, candidate
  int64_t requests_ = 0;
  int64_t changed_ = 0;
  absl::Time first_ = absl::InfiniteFuture();
  absl::Time last_ = absl::InfinitePast();
  std::map<std::pair<v1::Verdict, v1::Verdict>, int64_t> transitions_;
  std::map<std::string, TriggerChange> triggers_;
};

}  // namespace agate::service

#endif  // AGATE_SERVICE_SHADOW_REPORT_H_
