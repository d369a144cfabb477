#include "service/live_shadow.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "cases/case_store.h"
#include "common/proto_time.h"
#include "engine/evaluator.h"

namespace agate::service {
namespace {

constexpr int kLive = 0;
constexpr int kCandidate = 1;

// Lanes returns the lanes response's fired triggers name, in the order they first fire.
std::vector<absl::string_view> Lanes(const v1::EvaluateResponse& response) {
  std::vector<absl::string_view> lanes;
  for (const v1::FiredTrigger& f : response.fired()) {
    if (std::find(lanes.begin(), lanes.end(), f.lane()) == lanes.end()) lanes.push_back(f.lane());
  }
  return lanes;
}

}  // namespace

LiveShadow::Epoch::Epoch(std::shared_ptr<const engine::Matrix> live_matrix,
                         std::shared_ptr<const engine::Matrix> candidate_matrix, absl::Time at)
    : live(std::move(live_matrix)),
      candidate(std::move(candidate_matrix)),
      since(at),
      report(live, candidate) {}

LiveShadow::LiveShadow(std::shared_ptr<const engine::Matrix> live,
                       std::shared_ptr<const engine::Matrix> candidate,
                       const cases::SlidingWindowCounter& signals, const Clock& clock)
    : signals_(signals), clock_(clock) {
  absl::MutexLock lock(&mu_);
  Start(std::move(live), std::move(candidate));
}

void LiveShadow::Start(std::shared_ptr<const engine::Matrix> live,
                       std::shared_ptr<const engine::Matrix> candidate) {
  epoch_.store(std::make_shared<Epoch>(std::move(live), std::move(candidate), clock_.Now()),
               std::memory_order_release);
}

void LiveShadow::SetLive(std::shared_ptr<const engine::Matrix> live) {
  absl::MutexLock lock(&mu_);
  const std::shared_ptr<Epoch> epoch = epoch_.load(std::memory_order_acquire);
  if (live->version() == epoch->live->version()) return;  // e.g. a SIGHUP for another file
  Start(std::move(live), epoch->candidate);
}

void LiveShadow::SetCandidate(std::shared_ptr<const engine::Matrix> candidate) {
  absl::MutexLock lock(&mu_);
  const std::shared_ptr<Epoch> epoch = epoch_.load(std::memory_order_acquire);
  if (candidate->version() == epoch->candidate->version()) return;
  Start(epoch->live, std::move(candidate));
}

std::shared_ptr<const engine::Matrix> LiveShadow::candidate() const {
  return epoch_.load(std::memory_order_acquire)->candidate;
}

void LiveShadow::Observe(const v1::EvaluateRequest& request, const v1::EvaluateResponse& live) {
  if (live.decision_id().empty() || live.replayed()) return;
  const std::shared_ptr<Epoch> epoch = epoch_.load(std::memory_order_acquire);
  const absl::Time now = clock_.Now();
  engine::Decision decided =
      engine::Evaluate(epoch->candidate, request, now, {.counter = &signals_});
  if (decided.fired.empty() && live.fired_size() == 0 && live.verdict() == v1::VERDICT_ALLOW) {
    epoch->unchanged_allows.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // Only what the report compares: the verdict and the fired triggers with their lanes (no ids,
  // owners, deadlines nor observed values: each would allocate).
  thread_local v1::EvaluateResponse candidate;
  candidate.set_verdict(decided.verdict);
  const engine::Matrix& matrix = *epoch->candidate;
  candidate.mutable_fired()->Clear();  // keeps the elements' memory for the next request
  for (const engine::FiredTrigger& f : decided.fired) {
    const engine::Trigger& trigger = matrix.triggers()[f.trigger];
    const engine::Lane& lane = matrix.lanes()[trigger.lane];
    v1::FiredTrigger& out = *candidate.add_fired();
    out.set_trigger_id(trigger.id);
    out.set_lane(lane.name);
    out.set_verdict(lane.verdict);
  }
  std::vector<std::string> opened[2];
  absl::MutexLock lock(&epoch->mu);
  // A redemption opened nothing live; the candidate's approval would cover the same lanes.
  const bool redeemed = live.verdict() == v1::VERDICT_ALLOW && live.fired_size() > 0;
  if (!redeemed) Estimate(*epoch, kLive, *epoch->live, request, now, live, &opened[kLive]);
  const std::vector<absl::string_view> live_lanes = Lanes(live);
  const std::vector<absl::string_view> candidate_lanes = Lanes(candidate);
  const bool covered =
      std::all_of(candidate_lanes.begin(), candidate_lanes.end(), [&](absl::string_view lane) {
        return std::find(live_lanes.begin(), live_lanes.end(), lane) != live_lanes.end();
      });
  if (!redeemed || !covered) {
    Estimate(*epoch, kCandidate, *epoch->candidate, request, now, candidate, &opened[kCandidate]);
  }
  epoch->report.AddLive(request, now, live, candidate, opened[kLive], opened[kCandidate]);
}

void LiveShadow::Estimate(Epoch& epoch, int side, const engine::Matrix& matrix,
                          const v1::EvaluateRequest& request, absl::Time now,
                          const v1::EvaluateResponse& response,
                          std::vector<std::string>* opened) const {
  if (response.verdict() == v1::VERDICT_ALLOW && response.fired_size() == 0) return;
  absl::flat_hash_map<std::string, absl::Time>& open = epoch.open[side];
  for (absl::string_view name : Lanes(response)) {
    const int index = matrix.FindLane(name);
    if (index < 0) continue;  // a lane of an earlier matrix (a reload raced): not estimated
    const engine::Lane& lane = matrix.lanes()[index];
    std::string key = cases::OpenKeyOf(lane.name, lane.scope, request);
    auto it = open.find(key);
    if (it != open.end() && it->second > now) continue;  // joins the open case
    opened->push_back(lane.name);
    if (it != open.end()) {
      it->second = now + lane.sla;
      continue;
    }
    // Full: forget the estimates past their SLA, at most once a second (a sweep reads them all).
    if (open.size() >= kMaxOpenEstimates && now - epoch.swept[side] >= absl::Seconds(1)) {
      epoch.swept[side] = now;
      absl::erase_if(open, [now](const auto& entry) { return entry.second <= now; });
    }
    if (open.size() >= kMaxOpenEstimates) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    open.emplace(std::move(key), now + lane.sla);
  }
}

v1::ShadowReport LiveShadow::Report(const ShadowReport::Measured& measured) const {
  const std::shared_ptr<Epoch> epoch = epoch_.load(std::memory_order_acquire);
  const absl::Time now = clock_.Now();
  std::optional<ShadowReport> copy;
  {
    absl::MutexLock lock(&epoch->mu);
    copy.emplace(epoch->report);
  }
  copy->AddUnchangedAllows(epoch->unchanged_allows.load(std::memory_order_relaxed));
  v1::ShadowReport report = copy->ToProto(now - epoch->since, &measured);
  *report.mutable_since() = ToTimestamp(epoch->since);
  return report;
}

}  // namespace agate::service
