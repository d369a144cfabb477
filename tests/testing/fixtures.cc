#include "tests/testing/fixtures.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/decision_codec.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace agate::testing {

std::shared_ptr<const engine::Matrix> BundledMatrix() {
  absl::StatusOr<std::shared_ptr<const engine::Matrix>> m =
      engine::LoadMatrixFile(kBundledMatrixPath, nullptr);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *m : nullptr;
}

std::shared_ptr<const engine::Matrix> ParseMatrixOrFail(absl::string_view yaml) {
  std::vector<engine::Diagnostic> diagnostics;
  absl::StatusOr<std::shared_ptr<const engine::Matrix>> m =
      engine::ParseMatrix(yaml, "test.yaml", &diagnostics);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *m : nullptr;
}

engine::Request ParseRequest(absl::string_view text) {
  engine::Request r;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(std::string(text), &r)) << text;
  return r;
}

engine::Request MakeRequest(absl::string_view id, absl::string_view fields) {
  engine::Request r = ParseRequest(
      absl::StrCat("request_id: '", id, "' tenant_id: 't1' workflow_id: 'refunds' item_id: 'i1'"));
  r.MergeFrom(ParseRequest(fields));  // a field set in fields wins
  return r;
}

absl::StatusOr<v1::EvaluateResponse> DecideAndEncode(cases::Decider& decider,
                                                     const engine::Request& request,
                                                     cases::DecisionSealer* sealer) {
  ASSIGN_OR_RETURN(engine::Decision decision, decider.Decide(request, sealer));
  v1::EvaluateResponse response;
  engine::EncodeDecision(decision, &response);
  return response;
}

}  // namespace agate::testing
