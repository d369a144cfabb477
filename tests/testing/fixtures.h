// What the engine, case and service tests share: the bundled matrix, request builders and the
// decide -> encode step every test of the decision path takes.
//
//   std::shared_ptr<const engine::Matrix> m = testing::BundledMatrix();
//   engine::Request r = testing::MakeRequest("r1", "action { type: 'refund' amount: 300 }");
#ifndef AGATE_TESTS_TESTING_FIXTURES_H_
#define AGATE_TESTS_TESTING_FIXTURES_H_

#include <memory>
#include <random>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agate/v1/agate.pb.h"
#include "cases/decider.h"
#include "engine/matrix.h"
#include "engine/request.h"

namespace agate::testing {

// The bundled matrix's path and the matrix itself (a test failure, then null, if it does not
// load).
inline constexpr char kBundledMatrixPath[] =
    AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml";
std::shared_ptr<const engine::Matrix> BundledMatrix();
// TestMatrixPath returns the path of tests/testdata/matrices/NAME; LoadMatrixOrFail loads a
// matrix file (a test failure, then null, if it does not load).
std::string TestMatrixPath(absl::string_view name);
std::shared_ptr<const engine::Matrix> LoadMatrixOrFail(const std::string& path);
// ParseMatrixOrFail parses YAML text (file name "test.yaml"); a test failure, then null, if it
// has errors.
std::shared_ptr<const engine::Matrix> ParseMatrixOrFail(absl::string_view yaml);

// Mutate makes edits random edits to *text, each a character replaced, up to 8 erased or up to 3
// inserted, drawn from YAML's and JSON's syntax characters (for tests that hostile input is an
// error, never a crash).
void Mutate(std::string* text, int edits, std::mt19937& random);

// ParseRequest parses a text-format EvaluateRequest (a test failure if it does not parse).
engine::Request ParseRequest(absl::string_view text);
// MakeRequest is a request with request_id ID, tenant_id t1, workflow_id refunds and item_id i1,
// merged with the text-format fields (a field they set wins).
engine::Request MakeRequest(absl::string_view id, absl::string_view fields);

// Requests of the bundled matrix, for MakeRequest: nothing fires, the customer lane (HOLD), the
// financial lane (BLOCK), the security lane (DENY, credential key-1), and four retries (the ops
// lane's count() > 3: SAFE_MODE).
inline constexpr char kAllow[] =
    "action { type: 'send_reply' customer_facing: true } model { confidence: 0.95 }";
inline constexpr char kHold[] =
    "action { type: 'send_reply' customer_facing: true } model { confidence: 0.5 }";
inline constexpr char kBlock[] = "action { type: 'refund' amount: 300 } model { confidence: 0.95 }";
inline constexpr char kDeny[] =
    "action { type: 'send_reply' target_tenant_id: 't2' } actor { credential_id: 'key-1' } "
    "model { confidence: 0.95 }";
inline constexpr char kRetries[] = "action { type: 'sync' } signals { key: 'retry' value: 4 }";

// DecideAndEncode runs the decision path (Decide, then EncodeDecision) and returns the response
// a client would get.
absl::StatusOr<v1::EvaluateResponse> DecideAndEncode(cases::Decider& decider,
                                                     const engine::Request& request,
                                                     cases::DecisionSealer* sealer = nullptr);

}  // namespace agate::testing

#endif  // AGATE_TESTS_TESTING_FIXTURES_H_
