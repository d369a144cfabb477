// Policy tests: YAML files of requests and the decisions a matrix must give them, run offline by
// `agate test` through the same in-process Service as `agate eval --matrix`
// (client/offline_eval.h). The file format is documented in docs/matrix.md ("Testing and
// forecasting a change"); in short:
//
//   matrix: escalation-matrix.yaml          # relative to the test file
//   defaults: {tenant_id: t1, workflow_id: refunds}   # merged under every request (optional)
//   tests:
//     - name: refund over the limit blocks
//       request: {action: {type: refund, amount: 300}}
//       expect: {verdict: BLOCK, lane: financial, fired: [refund-over-limit]}
//     - name: refund limits                 # a table: one test per row
//       base: {action: {type: refund}}
//       expect: {verdict: ALLOW}            # for the rows without an expect of their own
//       rows:
//         - {name: at the limit, request: {action: {amount: 250}}}
//         - {name: over it, request: {action: {amount: 251}}, expect: {verdict: BLOCK}}
//     - name: an approval redeems once      # a sequence: steps share the Service and a clock
//       steps:
//         - {name: ask, request: {...}, expect: {verdict: BLOCK}}
//         - {acknowledge: {case: ask, decision: APPROVE, principal: finance-approver}}
//         - {redeem: ask}                   # the request again, naming the case: must redeem
//         - {at: +30s, request: {...}}      # advances the virtual clock first (or `at: 2m`)
//
// Requests are written in YAML with the eval input format's field names (proto3 JSON): a plain
// scalar that reads as a JSON number, true, false or null is one; a quoted scalar is a string.
// A request without request_id gets one. `expect` may name verdict (ALLOW ... DENY), lane (""
// for none), fired (the exact set of trigger ids), missing_evidence (the exact set) and error (a
// status code name, e.g. INVALID_ARGUMENT, for a request or acknowledgement that must fail).
//
// Each test (each table row) runs in a Service of its own on a FakeClock: no state leaks from
// one test to the next. Advancing the clock runs the SLA timers that came due.
//
// Errors: loading reports every problem of a file as a Diagnostic at its FILE:LINE:COL (bad
// YAML, unknown keys, unknown verdicts, trigger ids or lanes the matrix does not have, a matrix
// that cannot be loaded) and returns INVALID_ARGUMENT; running never fails: a test whose
// decisions differ from its expectations fails with a one-line reason.
//
// Thread-compatible; the functions keep no state.
//
// Example:
//   std::vector<engine::Diagnostic> diagnostics;
//   absl::StatusOr<std::vector<PolicyTestFile>> files = LoadPolicyTests({"deploy/examples"},
//                                                                       &diagnostics);
//   if (!files.ok()) ...  // print diagnostics, exit 2
//   PolicyTestReport report = RunPolicyTests(*files);
//   std::cout << report.Text();
#ifndef AGATE_CLIENT_POLICY_TEST_H_
#define AGATE_CLIENT_POLICY_TEST_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agate/v1/agate.pb.h"
#include "engine/diagnostic.h"
#include "engine/matrix.h"

namespace agate::client {

// What a step's outcome must be; an unset member is not checked.
struct Expectation {
  std::optional<v1::Verdict> verdict;
  std::optional<std::string> lane;
  std::optional<std::vector<std::string>> fired;             // a set: order does not matter
  std::optional<std::vector<std::string>> missing_evidence;  // a set
  std::optional<absl::StatusCode> error;                     // the call must fail with this code
};

// One step of a test: evaluate a request, acknowledge the case of an earlier step, redeem it
// (evaluate that step's request again naming its case), or only let time pass.
struct PolicyTestStep {
  enum class Kind { kRequest, kAcknowledge, kRedeem, kWait };
  Kind kind = Kind::kRequest;
  std::string name;  // "" or the step's name
  int line = 0;
  // The clock before the step: advanced by `advance` (`at: +30s`) or set to the test's start
  // plus `at` (`at: 2m`); never moves back.
  std::optional<absl::Duration> advance;
  std::optional<absl::Duration> at;
  v1::EvaluateRequest request;  // kRequest
  int target = -1;              // kAcknowledge, kRedeem: index of the earlier request step
  v1::Decision decision = v1::DECISION_UNSPECIFIED;  // kAcknowledge
  std::string principal;                             // kAcknowledge
  Expectation expect;
};

struct PolicyTest {
  std::string name;  // a table row's is "TABLE/ROW"
  int line = 0;      // of the test (or the row) in its file
  std::vector<PolicyTestStep> steps;
};

struct PolicyTestFile {
  std::string path;         // as found (given on the command line, or under a folder given)
  std::string matrix_path;  // resolved against the test file's folder
  std::shared_ptr<const engine::Matrix> matrix;
  std::vector<PolicyTest> tests;
};

// IsPolicyTestFileName tells whether a file found under a folder is a policy test: its name ends
// in "_test.yaml".
bool IsPolicyTestFileName(absl::string_view name);

// ParsePolicyTestFile reads a test file's text (path is used in diagnostics and to resolve its
// matrix, which is loaded with engine::LoadMatrixFile). Appends every problem to *diagnostics;
// INVALID_ARGUMENT if there is any error.
absl::StatusOr<PolicyTestFile> ParsePolicyTestFile(absl::string_view text, const std::string& path,
                                                   std::vector<engine::Diagnostic>* diagnostics);

// LoadPolicyTests loads each path: a file, or a folder searched (recursively, in name order) for
// files named *_test.yaml. A path that does not exist, a folder with no test file, and every
// problem of every file are reported in *diagnostics; INVALID_ARGUMENT if there is any error.
absl::StatusOr<std::vector<PolicyTestFile>> LoadPolicyTests(
    const std::vector<std::string>& paths, std::vector<engine::Diagnostic>* diagnostics);

struct PolicyTestResult {
  std::string file;
  int line = 0;
  std::string name;
  std::string failure;  // empty: passed; else "verdict: want BLOCK, got ALLOW" (step-prefixed)
  absl::Duration took;
};

// What no test fired, of one matrix.
struct Uncovered {
  std::string matrix;  // its path
  std::string lane;
  std::string trigger;  // empty: the lane itself (none of its decisions was seen)
};

struct PolicyTestReport {
  std::vector<PolicyTestResult> results;  // in file and test order
  std::vector<Uncovered> uncovered;       // in matrix order
  int passed = 0;
  int failed = 0;

  // Text renders what `agate test` prints: one "FILE:LINE: test NAME: REASON" line per failing
  // test, "N passed, M failed", then one "MATRIX: not covered: trigger ID (lane L)" (or
  // "not covered: lane L") line per uncovered trigger and lane.
  std::string Text() const;
  // JUnit renders the results as JUnit XML: a <testsuite> per file, a <testcase> per test with
  // a <failure> when it failed.
  std::string JUnit() const;
};

// RunPolicyTests runs every test of files.
PolicyTestReport RunPolicyTests(const std::vector<PolicyTestFile>& files);

}  // namespace agate::client

#endif  // AGATE_CLIENT_POLICY_TEST_H_
