// fuzz_cel: the input is a trigger condition (`when:`). It is compiled against the request schema
// and, if it compiles, evaluated against every sample request, with and without a signal counter.
//
// Besides crashes, hangs and leaks, it checks the contracts the matrix loader and the evaluator
// rely on (engine/expr/program.h):
//   - every compile error and warning has an offset inside the text (the loader maps offsets to
//     file positions by indexing);
//   - a run-time error's offset is inside the text;
//   - RequiredActionTypes: a request whose action.type is not listed never fires the condition
//     (the evaluator's trigger index skips it);
//   - ConstantValue: the condition evaluates to that value, without error, for every valid
//     request (lint reports such triggers as never / always firing).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/string_view.h"
#include "engine/expr/program.h"
#include "engine/request.h"
#include "tests/fuzz/sample_requests.h"

namespace agate::fuzz {
namespace {

using engine::Request;
using engine::expr::EvalContext;
using engine::expr::Outcome;
using engine::expr::Program;

// FixedCounter answers count() with the request's own count plus 3, as if earlier requests had
// reported the signal too.
class FixedCounter : public engine::expr::SignalCounter {
 public:
  int64_t Count(const Request& request, absl::string_view signal,
                absl::Duration window) const override {
    auto it = request.signals().find(std::string(signal));
    return (it == request.signals().end() ? 0 : it->second) + 3;
  }
};

[[noreturn]] void Fail(absl::string_view text, const char* what) {
  std::fprintf(stderr, "fuzz_cel: %s\nexpression: %.*s\n", what, static_cast<int>(text.size()),
               text.data());
  std::abort();
}

void CheckOffset(absl::string_view text, int offset, const char* what) {
  if (offset < 0 || static_cast<size_t>(offset) > text.size()) Fail(text, what);
}

void Run(absl::string_view text, const Program& program, const Request& request,
         const EvalContext& context) {
  const Outcome outcome = program.Evaluate(request, context);
  if (outcome.is_error()) {
    CheckOffset(text, outcome.error_offset(), "run-time error offset outside the text");
    (void)program.DescribeError(outcome);
  }
  std::vector<engine::expr::Observation> observed;
  program.Observe(request, context, &observed);

  const auto& types = program.RequiredActionTypes();
  if (types.has_value() && !absl::c_linear_search(*types, request.action().type()) &&
      outcome.fired()) {
    Fail(text, "fired for an action.type outside RequiredActionTypes()");
  }
  const std::optional<bool> constant = program.ConstantValue();
  if (constant.has_value() &&
      outcome.kind() != (*constant ? Outcome::Kind::kTrue : Outcome::Kind::kFalse)) {
    Fail(text, "evaluated differently from ConstantValue()");
  }
}

}  // namespace
}  // namespace agate::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace agate::fuzz;
  static const auto* const kRequests =
      new std::vector<std::pair<std::string, Request>>(SampleRequests());
  static const FixedCounter kCounter;

  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  agate::engine::expr::CompileResult result = agate::engine::expr::Compile(text);
  for (const auto& issue : result.errors) CheckOffset(text, issue.offset, "error offset");
  for (const auto& issue : result.warnings) CheckOffset(text, issue.offset, "warning offset");
  if (result.program == nullptr) {
    if (result.errors.empty()) Fail(text, "no program and no error");
    return 0;
  }
  if (!result.errors.empty()) Fail(text, "a program and errors");
  (void)result.program->Fields();
  for (const auto& [name, request] : *kRequests) {
    Run(text, *result.program, request, EvalContext{});
    Run(text, *result.program, request, EvalContext{.counter = &kCounter});
  }
  return 0;
}
