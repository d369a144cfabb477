// agate's CEL subset: compiling a trigger condition once, evaluating it per request.
//
// The language is a subset of Google's Common Expression Language with CEL's semantics
// (https://github.com/google/cel-spec/blob/master/doc/langdef.md): literals (int, uint, double,
// string, bool, null), field selection and indexing, `== != < <= > >=`, `+ - * / %`, `&& || !`,
// `?:`, `in`, list literals, `has()`, `size()`, `contains / startsWith / endsWith / matches`
// (RE2), the conversions `int() uint() double() string()`, and agate's `count(signal, window)`.
// The variables are the fields of agate.v1.EvaluateRequest (see engine/expr/schema.h).
//
// Compile parses and type-checks against the request schema and reports every problem with its
// byte offset in the expression text; callers (the matrix loader) turn offsets into file:line:col.
// A Program is immutable and thread-safe. Evaluate does no parsing and no heap allocation (the
// subset has no string or list concatenation: nothing builds values at run time).
//
// Example:
//   expr::CompileResult r = expr::Compile("action.customer_facing && model.confidence < 0.72");
//   if (!r.errors.empty()) { ... r.errors[0].offset, r.errors[0].message ... }
//   expr::Outcome o = r.program->Evaluate(request, {});
//   if (o.fired()) { ... }
#ifndef AGATE_ENGINE_EXPR_PROGRAM_H_
#define AGATE_ENGINE_EXPR_PROGRAM_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "engine/request.h"
#include "google/protobuf/struct.pb.h"

namespace agate::engine::expr {

// A compile-time problem at a byte offset of the expression text.
struct Issue {
  int offset = 0;
  std::string message;
};

// One value a condition read: the source text of the read (e.g. "model.confidence",
// "attributes.discount_pct", "count(\"retry\", \"10m\")") and its value (null_value if absent).
struct Observation {
  std::string field;
  google::protobuf::Value value;
};

// SignalCounter answers count(signal, window). Implementations must be thread-safe.
class SignalCounter {
 public:
  virtual ~SignalCounter() = default;
  // Count returns how many `signal` events were reported (in EvaluateRequest.signals) by requests
  // of request's tenant and workflow within `window` up to now, including request's own.
  virtual int64_t Count(const Request& request, absl::string_view signal,
                        absl::Duration window) const = 0;
};

// Per-evaluation inputs besides the request.
struct EvalContext {
  // Null: count(signal, window) reads only the request's own signals[signal] (0 when absent).
  const SignalCounter* counter = nullptr;
};

// Why an evaluation failed.
enum class ErrorCode : uint8_t {
  kNone = 0,
  kNoSuchKey,        // map key absent (attributes.x, signals["x"], evidence.x)
  kNoSuchOverload,   // operand of the wrong type at run time (dyn values from attributes)
  kIndexOutOfRange,  // list[i] with i outside [0, size)
  kDivisionByZero,   // int or uint / or % by zero
  kOverflow,         // int or uint arithmetic or conversion out of range
  kNotBool,          // the condition's value is not a bool
  kInvalidArgument,  // a conversion that cannot parse its input, e.g. int("x")
};

// The result of evaluating a condition. A condition that ends in an error counts as fired
// (fail closed); the error is reported with the fired trigger.
class Outcome {
 public:
  enum class Kind : uint8_t { kFalse, kTrue, kError };

  static Outcome False() { return Outcome(Kind::kFalse, ErrorCode::kNone, 0); }
  static Outcome True() { return Outcome(Kind::kTrue, ErrorCode::kNone, 0); }
  static Outcome Error(ErrorCode code, int offset) { return Outcome(Kind::kError, code, offset); }

  Kind kind() const { return kind_; }
  // fired is true for kTrue and for kError (fail closed).
  bool fired() const { return kind_ != Kind::kFalse; }
  bool is_error() const { return kind_ == Kind::kError; }
  ErrorCode error_code() const { return code_; }
  // error_offset is the byte offset of the subexpression that failed.
  int error_offset() const { return offset_; }

 private:
  Outcome(Kind kind, ErrorCode code, int offset) : kind_(kind), code_(code), offset_(offset) {}
  Kind kind_;
  ErrorCode code_;
  int offset_;
};

struct CompileResult;

namespace internal {
struct CompiledExpr;  // the checked, lowered expression; defined in internal/compiled.h
}  // namespace internal

// A compiled condition. Immutable after Compile; thread-safe.
class Program {
 public:
  ~Program();
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  // Evaluate runs the condition against request. See the file comment for allocation.
  Outcome Evaluate(const Request& request, const EvalContext& context) const;

  // DescribeError renders an error outcome for people, naming the failing subexpression, e.g.
  // "no such key 'discount_pct' in attributes.discount_pct".
  std::string DescribeError(const Outcome& outcome) const;

  // Observe appends to out the values the condition reads, in source order, once each.
  void Observe(const Request& request, const EvalContext& context,
               std::vector<Observation>* out) const;

  // ConstantValue is set when the condition has the same value for every valid request (e.g.
  // `1 > 2`, `model.confidence > 1.0`): a trigger that never or always fires.
  std::optional<bool> ConstantValue() const;

  // RequiredActionTypes is set when the condition can only be true, or fail, if action.type is
  // one of these values: it has a top-level conjunct `action.type == "x"` or
  // `action.type in ["x", "y"]` (CEL's `false && error` is false, so another type can never fire
  // it). The evaluator indexes triggers by it.
  const std::optional<std::vector<std::string>>& RequiredActionTypes() const;

  // Fields lists the request fields the condition reads, as dotted paths in source order, once
  // each: "action.customer_facing", "model.confidence", "attributes.discount_pct",
  // "signals.retry" (count("retry", ...) reads "signals.retry").
  const std::vector<std::string>& Fields() const;

  // source returns the expression text.
  const std::string& source() const;

 private:
  friend CompileResult Compile(absl::string_view text);
  explicit Program(std::unique_ptr<internal::CompiledExpr> expr);
  std::unique_ptr<internal::CompiledExpr> expr_;
};

struct CompileResult {
  // Null if and only if errors is non-empty.
  std::unique_ptr<const Program> program;
  // Syntax and type errors, in offset order.
  std::vector<Issue> errors;
  // Conditions that compile but may fail at run time, e.g. a map key read without a has() guard:
  // "attributes.discount_pct is read without has(attributes.discount_pct); a request without it
  // fails the condition (the trigger fires)".
  std::vector<Issue> warnings;
};

// Compile parses and type-checks text. Never throws; every error has an offset in text.
CompileResult Compile(absl::string_view text);

}  // namespace agate::engine::expr

#endif  // AGATE_ENGINE_EXPR_PROGRAM_H_
