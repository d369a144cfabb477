// The syntax of agate's CEL subset: a lexer and a recursive-descent parser producing a flat AST
// whose nodes carry byte offsets into the expression text.
//
// Internal to engine/expr. Parse never throws, never recurses deeper than kMaxDepth, and reports
// every syntax error with its offset.
#ifndef AGATE_ENGINE_EXPR_SYNTAX_H_
#define AGATE_ENGINE_EXPR_SYNTAX_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "engine/expr/program.h"

namespace agate::engine::expr::internal {

// Expressions longer than this are rejected (a trigger is a line, not a program).
inline constexpr size_t kMaxSourceBytes = 4096;
// Nesting deeper than this is rejected: the parser, checker and evaluator recurse.
inline constexpr int kMaxDepth = 32;

enum class NodeKind : uint8_t {
  kNull,
  kBool,
  kInt,
  kUint,
  kDouble,
  kString,
  kIdent,    // text: the name
  kSelect,   // text: the field; args[0]: the operand
  kIndex,    // args[0][args[1]]
  kCall,     // text: the function; args: receiver first when `receiver`
  kList,     // args: the elements
  kUnary,    // text: "!" or "-"; args[0]
  kBinary,   // text: the operator; args[0], args[1]
  kTernary,  // args[0] ? args[1] : args[2]
};

struct Node {
  NodeKind kind = NodeKind::kNull;
  int offset = 0;  // byte offset of the node's token (the operator for operators)
  std::string text;
  bool bool_value = false;
  int64_t int_value = 0;
  uint64_t uint_value = 0;
  double double_value = 0;
  bool receiver = false;  // kCall: args[0] is the receiver (x.f(...))
  std::vector<int> args;
};

struct Ast {
  std::vector<Node> nodes;
  int root = -1;
};

// Parse parses text into *ast; returns false with *errors filled on any syntax error.
bool Parse(absl::string_view text, Ast* ast, std::vector<Issue>* errors);

}  // namespace agate::engine::expr::internal

#endif  // AGATE_ENGINE_EXPR_SYNTAX_H_
