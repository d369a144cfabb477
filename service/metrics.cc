// Service::Metrics: the one list of what agate-server reports (names, types, help, labels), for
// GetStats and the metrics endpoint.
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "service/service.h"

namespace agate::service {
namespace {

class SampleList {
 public:
  void Counter(const char* name, const char* help, double value,
               std::vector<std::pair<std::string, std::string>> labels = {}) {
    Add(name, help, MetricType::kCounter, value, std::move(labels));
  }
  void Gauge(const char* name, const char* help, double value,
             std::vector<std::pair<std::string, std::string>> labels = {}) {
    Add(name, help, MetricType::kGauge, value, std::move(labels));
  }
  // Histogram adds a histogram's samples: buckets (not cumulative, the last past the last
  // bound), their sum and count.
  template <size_t N>
  void Histogram(const char* name, const char* help, const std::array<double, N>& bounds,
                 const std::array<uint64_t, N + 1>& buckets, double sum, uint64_t count) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= N; ++i) {
      cumulative += buckets[i];
      samples_.push_back(
          MetricSample{absl::StrCat(name, "_bucket"),
                       help,
                       MetricType::kHistogram,
                       {{"le", i < N ? absl::StrCat(bounds[i]) : std::string("+Inf")}},
                       static_cast<double>(cumulative),
                       name});
    }
    samples_.push_back(
        MetricSample{absl::StrCat(name, "_sum"), help, MetricType::kHistogram, {}, sum, name});
    samples_.push_back(MetricSample{absl::StrCat(name, "_count"),
                                    help,
                                    MetricType::kHistogram,
                                    {},
                                    static_cast<double>(count),
                                    name});
  }
  std::vector<MetricSample> Take() { return std::move(samples_); }

 private:
  void Add(const char* name, const char* help, MetricType type, double value,
           std::vector<std::pair<std::string, std::string>> labels) {
    samples_.push_back(MetricSample{name, help, type, std::move(labels), value});
  }
  std::vector<MetricSample> samples_;
};

}  // namespace

std::vector<MetricSample> Service::Metrics() const {
  SampleList out;
  for (int v = v1::VERDICT_ALLOW; v <= v1::VERDICT_DENY; ++v) {
    const engine::Verdict verdict = static_cast<engine::Verdict>(v);
    out.Counter("agate_decisions_total", "Decisions made, by verdict",
                static_cast<double>(counters_.decisions(verdict)),
                {{"verdict", std::string(engine::VerdictName(verdict))}});
  }
#define AGATE_COUNTER_SAMPLE(member, name, help) \
  out.Counter(name, help, static_cast<double>(counters_.member.load(std::memory_order_relaxed)));
  AGATE_COUNTERS(AGATE_COUNTER_SAMPLE)
#undef AGATE_COUNTER_SAMPLE
  for (const auto& [lane, verdict, n] : counters_.EscalationsByLane()) {
    out.Counter("agate_escalations_total",
                "Decisions that escalated (not ALLOW), by lane and verdict", static_cast<double>(n),
                {{"lane", lane}, {"verdict", std::string(engine::VerdictName(verdict))}});
  }
  {
    std::array<uint64_t, Counters::kLatencyBounds.size() + 1> buckets;
    for (size_t i = 0; i < buckets.size(); ++i) buckets[i] = counters_.LatencyBucket(i);
    out.Histogram("agate_evaluate_duration_seconds",
                  "Time Service::Evaluate took to make a decision (not errors or replays)",
                  Counters::kLatencyBounds, buckets, counters_.latency_sum_seconds(),
                  counters_.latency_count());
  }
  for (int d : {v1::DECISION_APPROVE, v1::DECISION_REJECT}) {
    out.Counter("agate_acks_total",
                "Acknowledgements accepted (quorum votes included), by decision",
                static_cast<double>(counters_.acks(d)),
                {{"decision", absl::AsciiStrToLower(absl::StripPrefix(
                                  v1::Decision_Name(static_cast<v1::Decision>(d)), "DECISION_"))}});
  }
  const std::shared_ptr<const engine::Matrix> matrix = decider_->matrix();
  {
    v1::GetStatsResponse stats;
    cases().Stats(matrix.get(), cases::TenantScope::All(), &stats);
    for (const v1::TriggerStats& t : stats.triggers()) {
      out.Counter("agate_trigger_fired_total", "Times each trigger of the current matrix fired",
                  static_cast<double>(t.fired()),
                  {{"trigger", t.trigger_id()}, {"lane", t.lane()}});
    }
  }
  out.Gauge("agate_open_cases", "Cases currently open", static_cast<double>(cases().open_cases()));
  {
    std::vector<std::string> lanes;
    for (const engine::Lane& lane : matrix->lanes()) lanes.push_back(lane.name);
    const std::vector<size_t> open = cases().OpenCasesByLane(lanes);
    for (size_t i = 0; i < lanes.size(); ++i) {
      out.Gauge("agate_open_cases_by_lane", "Cases currently open, by lane of the current matrix",
                static_cast<double>(open[i]), {{"lane", lanes[i]}});
    }
  }
  for (const auto& [lane, behavior, n] : cases().Timeouts()) {
    // on_timeout as the matrix file writes it (notify_backup, ...).
    const std::string on_timeout = absl::AsciiStrToLower(
        absl::StripPrefix(v1::TimeoutBehavior_Name(behavior), "TIMEOUT_BEHAVIOR_"));
    out.Counter("agate_sla_timeouts_total", "SLA deadlines that passed, by lane and on_timeout",
                static_cast<double>(n), {{"lane", lane}, {"on_timeout", on_timeout}});
  }
  out.Gauge("agate_open_case_bytes",
            "Bytes the open cases hold (protobuf's count), against --max-open-case-bytes",
            static_cast<double>(cases().open_case_bytes()));
  out.Gauge("agate_unsynced_cases", "Cases with changes the durable store has not committed yet",
            static_cast<double>(cases().unsynced()));
  out.Gauge("agate_watchers", "WatchCases streams and webhooks subscribed",
            static_cast<double>(cases().watchers()));
  if (idempotency_ != nullptr) {
    out.Gauge("agate_idempotency_entries", "Decisions kept for replay by request_id",
              static_cast<double>(idempotency_->size()));
  }
  out.Gauge("agate_matrix_info", "The matrix serving now (its version as a label)", 1,
            {{"version", decider_->matrix()->version()}});
  if (options_.store != nullptr) {
    const store::DurableStore::Stats s = options_.store->stats();
    out.Counter("agate_store_commits_total", "Case changes committed to the durable store",
                static_cast<double>(s.commits));
    out.Counter("agate_store_commit_failures_total",
                "Commits the durable store failed (the change is retried)",
                static_cast<double>(s.commit_errors));
    out.Histogram("agate_store_commit_duration_seconds",
                  "Time a successful commit of case changes took, the store's lock wait included",
                  store::DurableStore::kCommitBounds, s.commit_buckets, s.commit_seconds,
                  s.commits);
    out.Counter("agate_store_decision_rows_written_total",
                "Decision rows written in the background",
                static_cast<double>(s.decisions_written));
    out.Counter("agate_store_decision_rows_dropped_total",
                "Decision rows dropped because too many waited",
                static_cast<double>(s.decisions_dropped));
    out.Counter("agate_store_decision_row_write_failures_total",
                "Background writes of decision rows that failed",
                static_cast<double>(s.decision_write_errors));
  }
  if (options_.decision_log != nullptr) {
    const store::DecisionLog::Stats s = options_.decision_log->stats();
    out.Counter("agate_decision_log_records_total", "Records written to the decision log",
                static_cast<double>(s.records));
    out.Counter("agate_decision_log_write_failures_total",
                "Failed writes to the decision log (each is retried)",
                static_cast<double>(s.write_errors));
    out.Counter("agate_decision_log_dropped_total",
                "Records refused because the decision log's queue was full",
                static_cast<double>(s.dropped));
    out.Gauge("agate_decision_log_queue_depth", "Records waiting to be written",
              static_cast<double>(s.queued));
  }
  return out.Take();
}

}  // namespace agate::service
