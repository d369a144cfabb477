// Service::Metrics: the one list of what agate-server reports (names, types, help, labels), for
// GetStats and the metrics endpoint.
#include <string>
#include <vector>

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
  out.Gauge("agate_open_cases", "Cases currently open", static_cast<double>(cases().open_cases()));
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
    const store::SqliteStore::Stats s = options_.store->stats();
    out.Counter("agate_store_commits_total", "Case changes committed to the durable store",
                static_cast<double>(s.commits));
    out.Counter("agate_store_commit_failures_total",
                "Commits the durable store failed (the change is retried)",
                static_cast<double>(s.commit_errors));
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
