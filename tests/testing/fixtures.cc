#include "tests/testing/fixtures.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/decision_codec.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace agate::testing {

std::shared_ptr<const engine::Matrix> BundledMatrix() {
  return LoadMatrixOrFail(kBundledMatrixPath);
}

std::string TestMatrixPath(absl::string_view name) {
  return absl::StrCat(AGATE_SOURCE_DIR, "/tests/testdata/matrices/", name);
}

std::shared_ptr<const engine::Matrix> LoadMatrixOrFail(const std::string& path) {
  absl::StatusOr<std::shared_ptr<const engine::Matrix>> m = engine::LoadMatrixFile(path, nullptr);
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

void Mutate(std::string* text, int edits, std::mt19937& random) {
  constexpr char kInteresting[] = "[]{}:-'\"|>&*!#\n \t\\,?%@`+";
  for (int j = 0; j < edits && !text->empty(); ++j) {
    const size_t at = random() % text->size();
    switch (random() % 3) {
      case 0:
        (*text)[at] = kInteresting[random() % (sizeof(kInteresting) - 1)];
        break;
      case 1:
        text->erase(at, 1 + random() % 8);
        break;
      default:
        text->insert(at, std::string(1 + random() % 3, kInteresting[random() % 10]));
    }
  }
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
