// LiveShadow: shadow mode in a running server (agate-server --shadow-matrix). Every request the
// live matrix answered is decided again by a candidate matrix, and the pair goes to a
// ShadowReport (service/shadow_report.h) that GetShadowReport returns.
//
// The candidate only reads: it is evaluated by engine::Evaluate alone, with the live Decider's
// count() windows as its counter (it sees the counts the live matrix saw, including the request's
// own signals, and records nothing), and it opens no case. Its cases are estimated with the case
// store's join rule (cases::OpenKeyOf): a fired lane opens a case unless the same lane and scope
// key opened one within the lane's SLA; the live side's cases are estimated the same way, so the
// forecast's two columns compare like with like. A live redemption opens nothing on either side
// when every lane the candidate fires is one the live matrix fired (the approval would cover it).
//
// Cost: Observe runs on the request's thread after the answer was handed to the transport. A
// request both matrices allow with nothing fired costs one candidate evaluation and one atomic
// increment (no lock, no allocation); any other takes the report's mutex. Nothing queues, so
// nothing can fall behind; memory is bounded by kMaxOpenEstimates per side (when full, estimates
// past their SLA are swept at most once a second; past it a fired lane counts as a new case, and
// `estimates_dropped` says how often).
//
// A report covers one pair of matrix versions: SetLive or SetCandidate with another `version:` (a
// reload) starts a new one; a reload of the same version (a SIGHUP reloads both files) keeps it
// and the matrix it compares (bump the version when a matrix changes).
//
// Thread-safe.
//
// Example:
//   LiveShadow shadow(live, candidate, decider.signals(), RealClock());
//   ...answer the request, then:
//   shadow.Observe(request, response);
//   v1::ShadowReport report = shadow.Report(measured);
#ifndef AGATE_SERVICE_LIVE_SHADOW_H_
#define AGATE_SERVICE_LIVE_SHADOW_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agate/v1/agate.pb.h"
#include "cases/signal_counter.h"
#include "common/clock.h"
#include "engine/matrix.h"
#include "service/shadow_report.h"

namespace agate::service {

class LiveShadow {
 public:
  // Open-case estimates kept per side at most.
  static constexpr size_t kMaxOpenEstimates = 100'000;

  // live and candidate must not be null; signals and clock must outlive the LiveShadow.
  LiveShadow(std::shared_ptr<const engine::Matrix> live,
             std::shared_ptr<const engine::Matrix> candidate,
             const cases::SlidingWindowCounter& signals, const Clock& clock);
  LiveShadow(const LiveShadow&) = delete;
  LiveShadow& operator=(const LiveShadow&) = delete;

  // Observe decides request (valid: the live server decided it) with the candidate and records
  // the pair with live, the live answer. A replayed answer (no decision_id: an idempotent retry
  // answered from the cache) is skipped: the first answer was observed.
  void Observe(const v1::EvaluateRequest& request, const v1::EvaluateResponse& live);

  // SetLive and SetCandidate swap a matrix of another version (a reload) and start a new report;
  // a matrix of the same version changes nothing.
  void SetLive(std::shared_ptr<const engine::Matrix> live);
  void SetCandidate(std::shared_ptr<const engine::Matrix> candidate);
  std::shared_ptr<const engine::Matrix> candidate() const;

  // Report returns the report since the current pair of matrices was set, rates over the time
  // since then; measured gives the lanes' median times to decision and the owners' backlogs.
  v1::ShadowReport Report(const ShadowReport::Measured& measured) const;

  // estimates_dropped counts fired lanes counted as new cases because the estimates were full.
  int64_t estimates_dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  // The report of one pair of matrices.
  struct Epoch {
    Epoch(std::shared_ptr<const engine::Matrix> live,
          std::shared_ptr<const engine::Matrix> candidate, absl::Time since);
    const std::shared_ptr<const engine::Matrix> live;
    const std::shared_ptr<const engine::Matrix> candidate;
    const absl::Time since;
    std::atomic<int64_t> unchanged_allows{0};  // counted without mu
    mutable absl::Mutex mu;
    ShadowReport report ABSL_GUARDED_BY(mu);
    // Per side (live, candidate): open key -> until when the estimated case is open.
    absl::flat_hash_map<std::string, absl::Time> open[2] ABSL_GUARDED_BY(mu);
    absl::Time swept[2] ABSL_GUARDED_BY(mu) = {absl::InfinitePast(), absl::InfinitePast()};
  };

  // Estimate appends to *opened the lanes among response's fired ones (of matrix) that open a
  // case by side's estimate at now; the others join one.
  void Estimate(Epoch& epoch, int side, const engine::Matrix& matrix,
                const v1::EvaluateRequest& request, absl::Time now,
                const v1::EvaluateResponse& response, std::vector<std::string>* opened) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(epoch.mu);
  void Start(std::shared_ptr<const engine::Matrix> live,
             std::shared_ptr<const engine::Matrix> candidate) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const cases::SlidingWindowCounter& signals_;
  const Clock& clock_;
  absl::Mutex mu_;  // serializes SetLive / SetCandidate
  std::atomic<std::shared_ptr<Epoch>> epoch_;
  mutable std::atomic<int64_t> dropped_{0};
};

}  // namespace agate::service

#endif  // AGATE_SERVICE_LIVE_SHADOW_H_
