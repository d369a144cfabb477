// The escalation matrix: lanes (who owns what, how urgent, what happens meanwhile) and triggers
// (observable conditions in agate's CEL subset), loaded from YAML and compiled once.
//
// A Matrix is immutable after loading and shared as std::shared_ptr<const Matrix>; a reload
// builds a new one. Every structural problem is reported as a Diagnostic pointing at the
// offending YAML node (FILE:LINE:COL); lint warnings (the source article's common mistakes) come
// with the same positions. The format is documented in docs/matrix.md.
//
// Example:
//   std::vector<Diagnostic> diagnostics;
//   absl::StatusOr<std::shared_ptr<const Matrix>> m = LoadMatrixFile("matrix.yaml", &diagnostics);
//   for (const Diagnostic& d : diagnostics) std::cerr << d.ToString() << "\n";
//   if (!m.ok()) return 1;
#ifndef AGATE_ENGINE_MATRIX_H_
#define AGATE_ENGINE_MATRIX_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "engine/diagnostic.h"
#include "engine/expr/program.h"
#include "engine/verdict.h"

namespace agate::engine {

// A lane: one kind of situation and everything about who handles it.
struct Lane {
  std::string name;
  std::string owner;
  std::string backup;    // empty if none
  std::string fallback;  // empty if none; required by on_timeout: route_to_fallback
  absl::Duration sla;
  Verdict verdict = v1::VERDICT_UNSPECIFIED;  // never ALLOW
  Scope scope = v1::SCOPE_UNSPECIFIED;        // defaults from the verdict when not written
  std::string agent_action;
  std::string operator_action;
  std::vector<std::string> evidence;  // names the request's evidence map must contain
  TimeoutBehavior on_timeout = v1::TIMEOUT_BEHAVIOR_UNSPECIFIED;  // unspecified if not written
  // Distinct people who must approve a case of the lane (M-of-N); one rejection rejects.
  int approvals = 1;
  // False: the person an agent acted for (EvaluateRequest.actor.on_behalf_of) may not approve.
  bool requester_may_approve = true;
  // How long an approval stays redeemable; zero: the lane's SLA.
  absl::Duration approval_ttl = absl::ZeroDuration();
  // Approval fatigue: past this many open cases held by the owner (per tenant), a new case of
  // the lane goes to the backup; 0: no bound.
  int max_open_per_owner = 0;
  // The request fields an approval of the lane is bound to (engine/fingerprint.h); empty: the
  // default set.
  std::vector<std::string> fingerprint;
  SourceLocation location;  // of the lane's name
};

// A trigger: an observable condition that escalates into a lane.
struct Trigger {
  std::string id;
  int lane = -1;  // index into Matrix::lanes()
  std::shared_ptr<const expr::Program> condition;
  SourceLocation location;       // of the trigger's list item
  SourceLocation when_location;  // of the first character of the condition text
};

class Matrix {
 public:
  Matrix(std::string file, std::string version, std::string name, std::vector<Lane> lanes,
         std::vector<Trigger> triggers);

  // file is the path the matrix was loaded from (or the name given to ParseMatrix).
  const std::string& file() const { return file_; }
  // version is the `version:` value as written (e.g. "3"); reported as matrix_version.
  const std::string& version() const { return version_; }
  const std::string& name() const { return name_; }
  // lanes in file order (the order breaks verdict ties).
  const std::vector<Lane>& lanes() const { return lanes_; }
  // triggers in file order (the order of `fired`).
  const std::vector<Trigger>& triggers() const { return triggers_; }
  // FindLane returns the index of the lane called name, or -1.
  int FindLane(absl::string_view name) const;
  // capture_redact lists the request fields a request capture redacts (`capture: {redact: [...]}`,
  // engine/redaction.h); empty when the matrix declares none.
  const std::vector<std::string>& capture_redact() const { return capture_redact_; }
  void set_capture_redact(std::vector<std::string> fields) { capture_redact_ = std::move(fields); }

  // The trigger index: triggers that can only fire for given action types (see
  // expr::Program::RequiredActionTypes), by type, and the triggers every request must evaluate.
  // Both lists are in matrix order; the evaluator merges them, so `fired` keeps matrix order.
  const std::vector<int>& TriggersForActionType(absl::string_view type) const;
  const std::vector<int>& UnindexedTriggers() const { return unindexed_; }

 private:
  std::string file_;
  std::string version_;
  std::string name_;
  std::vector<Lane> lanes_;
  std::vector<Trigger> triggers_;
  absl::flat_hash_map<std::string, std::vector<int>> by_action_type_;
  std::vector<int> unindexed_;
  std::vector<std::string> capture_redact_;
};

// ParseMatrix loads a matrix from YAML text; file_name is used in diagnostics. Appends every
// error and warning to *diagnostics (sorted by position) when it is not null. Returns
// INVALID_ARGUMENT with every error, one per line, if there is any error.
absl::StatusOr<std::shared_ptr<const Matrix>> ParseMatrix(absl::string_view yaml,
                                                          absl::string_view file_name,
                                                          std::vector<Diagnostic>* diagnostics);

// LoadMatrixFile reads path and calls ParseMatrix. A file that cannot be read is NOT_FOUND (or
// the errno's status) with a "FILE: error: ..." diagnostic.
absl::StatusOr<std::shared_ptr<const Matrix>> LoadMatrixFile(const std::string& path,
                                                             std::vector<Diagnostic>* diagnostics);

// LintMatrix returns warnings about a valid matrix that repeats the common mistakes: one owner
// for every lane, an urgent lane (SLA <= 1h) without backup, a lane without evidence
// requirements, without on_timeout, without agent_action/operator_action, or without triggers; a
// trigger that can never fire or always fires; a vague trigger (reads model.confidence but no
// action field); a BLOCK lane whose declared fingerprint omits action.amount or action.target.
// ParseMatrix already includes these in its diagnostics.
std::vector<Diagnostic> LintMatrix(const Matrix& matrix);

}  // namespace agate::engine

#endif  // AGATE_ENGINE_MATRIX_H_
