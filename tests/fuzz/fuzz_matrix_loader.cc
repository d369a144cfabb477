// fuzz_matrix_loader: the input is the text of a matrix file. It goes through ParseMatrix (the
// entry LoadMatrixFile uses, lint included) and, when it loads, the matrix is linted again and
// decides every sample request: what `agate check` and a server start do with a file.
//
// Besides crashes, hangs and leaks, it checks ParseMatrix's contract (engine/matrix.h): it fails
// if and only if there is an error diagnostic, and every diagnostic renders.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "engine/diagnostic.h"
#include "engine/evaluator.h"
#include "engine/matrix.h"
#include "tests/fuzz/sample_requests.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace agate::engine;
  static const auto* const kRequests =
      new std::vector<std::pair<std::string, Request>>(agate::fuzz::SampleRequests());

  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<Diagnostic> diagnostics;
  absl::StatusOr<std::shared_ptr<const Matrix>> matrix =
      ParseMatrix(text, "fuzz.yaml", &diagnostics);
  for (const Diagnostic& d : diagnostics) (void)d.ToString();
  if (matrix.ok() == HasErrors(diagnostics)) {
    std::fprintf(stderr, "fuzz_matrix_loader: ParseMatrix returned %s with %s error diagnostic\n",
                 matrix.status().ToString().c_str(), HasErrors(diagnostics) ? "an" : "no");
    std::abort();
  }
  if (!matrix.ok()) return 0;

  for (const Diagnostic& d : LintMatrix(**matrix)) (void)d.ToString();
  const absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  for (const auto& [name, request] : *kRequests) (void)Evaluate(*matrix, request, now);
  return 0;
}
