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
// (an ALLOW naming an approved case) opens nothing. Review hours per day take the lane's measured
// median time to decision as the time a case costs where one is known (Measured: a live server
// has them), otherwise the lane's SLA, an upper bound (offline there are none).
//
// AddLive is the live server's entry (service/live_shadow.h): the live side is the server's
// answer, compared by the live matrix's own verdict (what its fired triggers say) so that a
// redemption's ALLOW or a verdict a scope in force imposed is not a change; the candidate's
// case ids are the ones LiveShadow estimates.
//
// The report's wire form is v1::ShadowReport (ToProto); RenderText and RenderJson print it, the
// same for `agate shadow` offline and for a server's GetShadowReport.
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
    absl::Duration time_per_case;  // the measured median time to decision, or the SLA
    bool time_measured = false;
    double review_hours_per_day = 0;
    int64_t backlog = 0;  // the owner group's open cases now (Measured)
    double expected_sla_breaches = 0;
  };
  // What a live server measures that the forecast uses: per lane the median time from a case's
  // opening to its decision, per owner group its open cases now.
  struct Measured {
    absl::flat_hash_map<std::string, absl::Duration> median_time_to_decision;  // by lane
    absl::flat_hash_map<std::string, int64_t> backlog;                         // by owner
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
  // AddLive records a request the live server answered with live and the candidate decided as
  // candidate, at `at`; *_opened name the lanes of the cases each side opened (the caller's
  // estimate: a live report keeps no case ids).
  void AddLive(const v1::EvaluateRequest& request, absl::Time at, const v1::EvaluateResponse& live,
               const v1::EvaluateResponse& candidate, const std::vector<std::string>& live_opened,
               const std::vector<std::string>& candidate_opened);
  // AddUnchangedAllows records n requests both matrices allowed without firing anything (the live
  // server counts those without the report's lock); the span is unchanged.
  void AddUnchangedAllows(int64_t n);

  // changed counts the requests both sides decided with different verdicts.
  int64_t changed() const { return changed_; }
  // The span between the first and the last request added (zero before two).
  absl::Duration observed_span() const;
  int64_t redemptions() const { return redemptions_; }
  int64_t imposed() const { return imposed_; }
  // Transitions returns (live verdict, candidate verdict) -> requests, for every pair seen.
  const std::map<std::pair<v1::Verdict, v1::Verdict>, int64_t>& transitions() const {
    return transitions_;
  }
  // TopTriggers returns up to n changed triggers, most changed decisions first.
  std::vector<TriggerChange> TopTriggers(size_t n) const;
  // Forecast returns a row per candidate lane, in matrix order; rates are over span (none when
  // span is not positive); measured (may be null) gives the times per case and the backlogs.
  std::vector<LaneForecast> Forecast(absl::Duration span, const Measured* measured = nullptr) const;

  // ToProto returns the report's wire form, rates over span.
  v1::ShadowReport ToProto(absl::Duration span, const Measured* measured = nullptr) const;
  // Text renders the report for people; Json as one JSON object (docs/matrix.md lists its
  // fields). Rates are over span.
  std::string Text(absl::Duration span) const { return RenderText(ToProto(span)); }
  std::string Json(absl::Duration span) const { return RenderJson(ToProto(span)); }
  static std::string RenderText(const v1::ShadowReport& report);
  static std::string RenderJson(const v1::ShadowReport& report);

 private:
  struct Side {
    const engine::Matrix* matrix;
    absl::flat_hash_set<std::string> cases;
    absl::flat_hash_map<std::string, int64_t> escalations;  // by lane
    int64_t refused = 0;
    absl::Status first_refusal;
  };
  static void CountCases(const v1::EvaluateResponse& response, Side* side);
  // Compare records one request both sides decided, by the verdicts given.
  void Compare(const v1::EvaluateRequest& request, v1::Verdict live_verdict,
               const v1::EvaluateResponse& live, const v1::EvaluateResponse& candidate);
  void Observed(absl::Time at);

  std::shared_ptr<const engine::Matrix> live_matrix_;
  std::shared_ptr<const engine::Matrix> candidate_matrix_;
  std::array<Side, 2> sides_;  // live, candidate
  int64_t requests_ = 0;
  int64_t changed_ = 0;
  absl::Time first_ = absl::InfiniteFuture();
  absl::Time last_ = absl::InfinitePast();
  std::map<std::pair<v1::Verdict, v1::Verdict>, int64_t> transitions_;
  std::map<std::pair<v1::Verdict, v1::Verdict>, std::vector<std::string>> transition_samples_;
  std::map<std::string, TriggerChange> triggers_;
  int64_t redemptions_ = 0;
  int64_t imposed_ = 0;
};

}  // namespace agate::service

#endif  // AGATE_SERVICE_SHADOW_REPORT_H_
