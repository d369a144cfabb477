// fuzz_policy_test: the input is the text of a policy test file (client/policy_test.h), read as
// if it sat beside the bundled matrix. It goes through ParsePolicyTestFile and, when it loads,
// every test runs and the report renders as text and JUnit: what `agate test` does with a file.
//
// Besides crashes, hangs and leaks, it checks ParsePolicyTestFile's contract: it fails if and only
// if there is an error diagnostic, and every diagnostic renders.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "client/policy_test.h"
#include "engine/diagnostic.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace agate;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<engine::Diagnostic> diagnostics;
  absl::StatusOr<client::PolicyTestFile> file = client::ParsePolicyTestFile(
      text, AGATE_SOURCE_DIR "/deploy/examples/fuzz_test.yaml", &diagnostics);
  for (const engine::Diagnostic& d : diagnostics) (void)d.ToString();
  if (file.ok() == engine::HasErrors(diagnostics)) {
    std::fprintf(stderr,
                 "fuzz_policy_test: ParsePolicyTestFile returned %s with %s error diagnostic\n",
                 file.status().ToString().c_str(), engine::HasErrors(diagnostics) ? "an" : "no");
    std::abort();
  }
  if (!file.ok()) return 0;
  const client::PolicyTestReport report = client::RunPolicyTests({*std::move(file)});
  (void)report.Text();
  (void)report.JUnit();
  return 0;
}
