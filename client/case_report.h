// CaseReport: what became of each trigger's cases over a window (`agate report --since 7d`):
// how often it fired, how its cases ended, its approval rate and median time to decision, and
// the triggers people nearly always approve: candidates to relax (a finding with its numbers,
// never a change to the matrix).
//
// Computed on the client from ListCases pages (newest first), so it needs no server support
// beyond the calls an operator already makes, and shows exactly the cases the caller may see.
// It covers the cases the server still keeps: every open case and the newest closed ones
// (--max-closed-case-bytes, docs/operations.md).
//
// Definitions, per trigger, over the cases opened within the window in which it fired:
//   fired             the decisions it fired in (each request that opened or joined such a case)
//   approval rate     approved / (approved + rejected); open, resolved and expired cases are not
//                     decisions on the action and do not count
//   time to decision  from opening to the transition that approved, rejected or resolved it
//                     (the upper median, as GetStats computes it)
//   relax candidate   approval rate above 95% over at least 20 approved or rejected cases
//
// CaseReportBuilder is thread-compatible; CaseReport is a value.
//
// Example:
//   CaseReportBuilder builder(absl::Now() - absl::Hours(24 * 7), absl::Now());
//   for (const v1::Case& c : page.cases()) if (!builder.Add(c)) break;  // older: stop paging
//   std::cout << builder.Build().Text();
#ifndef AGATE_CLIENT_CASE_REPORT_H_
#define AGATE_CLIENT_CASE_REPORT_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agate/v1/agate.pb.h"

namespace agate::client {

class Client;

// The relax finding's thresholds (issue 21): more than kRelaxRate approved, over at least
// kRelaxMinCases approved or rejected cases.
inline constexpr double kRelaxRate = 0.95;
inline constexpr int64_t kRelaxMinCases = 20;

struct TriggerOutcome {
  std::string trigger_id;
  std::string lane;
  int64_t fired = 0;
  int64_t cases = 0;
  int64_t open = 0;
  int64_t approved = 0;
  int64_t rejected = 0;
  int64_t resolved = 0;
  int64_t expired = 0;
  std::optional<absl::Duration> median_time_to_decision;  // none decided

  // approval_rate is approved / (approved + rejected), nullopt when neither happened.
  std::optional<double> approval_rate() const;
  // relax_candidate says whether the trigger is a candidate to relax (see the file comment).
  bool relax_candidate() const;
};

struct CaseReport {
  absl::Time from;  // the window: the cases opened at or after from,
  absl::Time to;    // the report's time
  int64_t cases = 0;
  std::vector<TriggerOutcome> triggers;  // by lane, then trigger id

  // Text is the table `agate report` prints, then one line per relax candidate.
  std::string Text() const;
  // Json is the same as one JSON object (`agate report --json`).
  std::string Json() const;
};

class CaseReportBuilder {
 public:
  // The window is from `from` to the report's time `to`.
  CaseReportBuilder(absl::Time from, absl::Time to) : from_(from), to_(to) {}

  // Add counts c if it opened within the window. It returns false for a case opened before the
  // window: ListCases pages newest first, so the caller can stop there.
  bool Add(const v1::Case& c);
  CaseReport Build() const;

 private:
  struct Counts {
    TriggerOutcome outcome;
    std::vector<absl::Duration> decision_times;
  };
  absl::Time from_, to_;
  int64_t cases_ = 0;
  std::map<std::pair<std::string, std::string>, Counts> by_trigger_;  // (lane, trigger id)
};

// ParseSince reads --since ("7d", "24h", "90m"): INVALID_ARGUMENT naming --since for anything
// that is not a positive duration of at most 366 days.
absl::StatusOr<absl::Duration> ParseSince(absl::string_view text);

// FetchCaseReport pages through client's ListCases (page_size cases a page, at most 1,000) until
// the first case opened before now - since, and returns the report; the first failed call's
// status otherwise.
absl::StatusOr<CaseReport> FetchCaseReport(Client& client, absl::Duration since, absl::Time now,
                                           int page_size = 1000);

}  // namespace agate::client

#endif  // AGATE_CLIENT_CASE_REPORT_H_
