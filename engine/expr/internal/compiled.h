// The compiled form of a condition, shared by the checker (which builds it), the analyses
// (which annotate it) and the interpreter (which runs it): one Compiled per AST node, in the
// AST's order, so that a node index names the same subexpression in all three.
//
// Internal to engine/expr. A CompiledExpr is built once by Compile (Parse, then Check, then
// Analyze) and is immutable afterwards; Program owns it and shares it read-only between threads.
#ifndef AGATE_ENGINE_EXPR_INTERNAL_COMPILED_H_
#define AGATE_ENGINE_EXPR_INTERNAL_COMPILED_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "engine/expr/internal/values.h"
#include "engine/expr/schema.h"
#include "engine/expr/syntax.h"
#include "re2/re2.h"

namespace agate::engine::expr::internal {

// What a node does at run time.
enum class Op : uint8_t {
  kConst,
  kField,      // read a request field
  kMapGet,     // a[0] is a map (or dyn); key: `key` when has_key, else a[1]
  kListIndex,  // a[0][a[1]]
  kDynIndex,   // a[0][a[1]] on a dyn value: list or map at run time
  kNot,
  kNeg,
  kAnd,
  kOr,
  kTernary,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kIn,
  kHasField,
  kHasKey,  // key in a[0]
  kSize,
  kContains,
  kStartsWith,
  kEndsWith,
  kMatches,
  kToInt,
  kToUint,
  kToDouble,
  kToString,
  kCount,
  kList,  // a list literal (only under `in` and size())
};

// Compiled is one AST node, typed and lowered to an Op.
struct Compiled {
  Op op = Op::kConst;
  Type type = Type::kNull;
  Field field = Field::kNone;
  std::vector<int> a;  // operand nodes
  bool has_key = false;
  std::string key;  // kMapGet/kHasKey constant key; kCount signal
  absl::Duration window;
  std::unique_ptr<RE2> regex;
  Val constant;
  std::unique_ptr<absl::flat_hash_set<std::string>> string_set;  // kIn over a constant list
  bool can_error = true;
};

// CompiledExpr is a checked, lowered condition and what the analyses found in it.
struct CompiledExpr {
  std::string source;
  Ast ast;
  std::vector<Compiled> nodes;     // parallel to ast.nodes
  std::vector<std::string> texts;  // canonical source text per node
  std::vector<std::string> fields;
  std::vector<int> reads;  // nodes Observe reports, in source order
  std::optional<bool> constant;
  std::optional<std::vector<std::string>> action_types;
};

}  // namespace agate::engine::expr::internal

#endif  // AGATE_ENGINE_EXPR_INTERNAL_COMPILED_H_
