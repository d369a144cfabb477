#include "engine/expr/internal/checker.h"

#include <algorithm>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/duration.h"
#include "engine/expr/internal/values.h"
#include "engine/expr/schema.h"
#include "engine/expr/syntax.h"
#include "re2/re2.h"

namespace agate::engine::expr::internal {
namespace {

bool IsNumeric(Type t) { return t == Type::kInt || t == Type::kUint || t == Type::kDouble; }
bool IsMap(Type t) { return t == Type::kMapInt || t == Type::kMapString || t == Type::kMapDyn; }
bool IsList(Type t) { return t == Type::kListString || t == Type::kListDyn; }

std::string Quote(absl::string_view s) { return absl::StrCat("\"", absl::CEscape(s), "\""); }

class Checker {
 public:
  Checker(CompiledExpr& e, std::vector<Issue>& errors) : e_(e), errors_(errors) {
    e_.nodes.resize(e_.ast.nodes.size());
    e_.texts.resize(e_.ast.nodes.size());
  }

  void Run() {
    for (size_t i = 0; i < e_.ast.nodes.size(); ++i) Text(static_cast<int>(i));
    const Type t = Check(e_.ast.root, /*list_ok=*/false);
    if (errors_.empty() && t != Type::kBool && t != Type::kDyn) {
      Error(0, absl::StrCat("condition must be bool, got ", TypeName(t)));
    }
  }

 private:
  const Node& N(int n) const { return e_.ast.nodes[n]; }
  Compiled& K(int n) { return e_.nodes[n]; }

  void Error(int offset, std::string message) {
    for (const Issue& i : errors_) {
      if (i.offset == offset && i.message == message) return;
    }
    errors_.push_back(Issue{offset, std::move(message)});
  }

  // Text renders node n as canonical source text (for messages and Observe).
  const std::string& Text(int n) {
    std::string& t = e_.texts[n];
    if (!t.empty()) return t;
    const Node& node = N(n);
    auto arg = [&](size_t i) -> std::string { return Text(node.args[i]); };
    switch (node.kind) {
      case NodeKind::kNull:
        t = "null";
        break;
      case NodeKind::kBool:
        t = node.bool_value ? "true" : "false";
        break;
      case NodeKind::kInt:
        t = absl::StrCat(node.int_value);
        break;
      case NodeKind::kUint:
        t = absl::StrCat(node.uint_value, "u");
        break;
      case NodeKind::kDouble: {
        t = absl::StrCat(node.double_value);
        if (t.find_first_of(".eEn") == std::string::npos) t += ".0";
        break;
      }
      case NodeKind::kString:
        t = Quote(node.text);
        break;
      case NodeKind::kIdent:
        t = node.text;
        break;
      case NodeKind::kSelect:
        t = absl::StrCat(arg(0), ".", node.text);
        break;
      case NodeKind::kIndex:
        t = absl::StrCat(arg(0), "[", arg(1), "]");
        break;
      case NodeKind::kCall: {
        std::vector<std::string> args;
        for (size_t i = node.receiver ? 1 : 0; i < node.args.size(); ++i) args.push_back(arg(i));
        t = absl::StrCat(node.receiver ? absl::StrCat(arg(0), ".") : "", node.text, "(",
                         absl::StrJoin(args, ", "), ")");
        break;
      }
      case NodeKind::kList: {
        std::vector<std::string> args;
        for (size_t i = 0; i < node.args.size(); ++i) args.push_back(arg(i));
        t = absl::StrCat("[", absl::StrJoin(args, ", "), "]");
        break;
      }
      case NodeKind::kUnary:
        t = absl::StrCat(node.text, arg(0));
        break;
      case NodeKind::kBinary:
        t = absl::StrCat(arg(0), " ", node.text, " ", arg(1));
        break;
      case NodeKind::kTernary:
        t = absl::StrCat(arg(0), " ? ", arg(1), " : ", arg(2));
        break;
    }
    return t;
  }

  Type Set(int n, Op op, Type type, std::vector<int> args = {}) {
    Compiled& k = K(n);
    k.op = op;
    k.type = type;
    k.a = std::move(args);
    return type;
  }
  Type Const(int n, Val v, Type type) {
    Compiled& k = K(n);
    k.op = Op::kConst;
    k.type = type;
    k.constant = v;
    k.can_error = false;
    return type;
  }

  std::string Overload(absl::string_view op, std::initializer_list<Type> types) {
    std::vector<absl::string_view> names;
    for (Type t : types) names.push_back(TypeName(t));
    return absl::StrCat("no matching overload for '", op, "' applied to (",
                        absl::StrJoin(names, ", "), ")");
  }

  // Check types node n. list_ok: a list literal is allowed here (right of `in`, size()).
  Type Check(int n, bool list_ok) {
    const Node& node = N(n);
    switch (node.kind) {
      case NodeKind::kNull:
        return Const(n, Val::Null(), Type::kNull);
      case NodeKind::kBool:
        return Const(n, Val::Bool(node.bool_value), Type::kBool);
      case NodeKind::kInt:
        return Const(n, Val::Int(node.int_value), Type::kInt);
      case NodeKind::kUint:
        return Const(n, Val::Uint(node.uint_value), Type::kUint);
      case NodeKind::kDouble:
        return Const(n, Val::Double(node.double_value), Type::kDouble);
      case NodeKind::kString:
        return Const(n, Val::String(node.text), Type::kString);
      case NodeKind::kIdent: {
        const FieldInfo* f = FindField(Field::kNone, node.text);
        if (f == nullptr) {
          Error(node.offset, absl::StrCat("unknown field '", node.text, "'; request fields are ",
                                          FieldNames(Field::kNone)));
          return Type::kDyn;
        }
        K(n).field = f->field;
        K(n).can_error = false;
        return Set(n, Op::kField, f->type);
      }
      case NodeKind::kSelect:
        return Select(n);
      case NodeKind::kIndex: {
        const Type t = Check(node.args[0], false);
        const Type i = Check(node.args[1], false);
        if (t == Type::kMessage) {
          Error(node.offset,
                absl::StrCat("cannot index ", Text(node.args[0]), ": select its fields with '.'"));
          return Type::kDyn;
        }
        if (IsMap(t)) {
          if (i != Type::kString && i != Type::kDyn) {
            Error(node.offset, Overload("[]", {t, i}));
            return Type::kDyn;
          }
          if (N(node.args[1]).kind == NodeKind::kString) {
            K(n).has_key = true;
            K(n).key = N(node.args[1]).text;
          }
          return Set(n, Op::kMapGet, MapValueType(t), {node.args[0], node.args[1]});
        }
        if (IsList(t)) {
          if (!IsNumeric(i) && i != Type::kDyn) {
            Error(node.offset, Overload("[]", {t, i}));
            return Type::kDyn;
          }
          return Set(n, Op::kListIndex, t == Type::kListString ? Type::kString : Type::kDyn,
                     {node.args[0], node.args[1]});
        }
        if (t == Type::kDyn) return Set(n, Op::kDynIndex, Type::kDyn, {node.args[0], node.args[1]});
        Error(node.offset, Overload("[]", {t, i}));
        return Type::kDyn;
      }
      case NodeKind::kCall:
        return Call(n);
      case NodeKind::kList: {
        if (!list_ok) {
          Error(node.offset, "list literals are only supported on the right of 'in' and in size()");
        }
        bool can_error = false;
        for (int arg : node.args) {
          const Type t = Check(arg, false);
          if (t == Type::kMessage || IsMap(t) || IsList(t)) {
            Error(N(arg).offset, absl::StrCat("a list literal cannot hold a ", TypeName(t)));
          }
          can_error = can_error || K(arg).can_error;
        }
        // The list fails if an element fails.
        K(n).can_error = can_error;
        return Set(n, Op::kList, Type::kListDyn, node.args);
      }
      case NodeKind::kUnary: {
        const Type t = Check(node.args[0], false);
        if (node.text == "!") {
          if (t != Type::kBool && t != Type::kDyn) Error(node.offset, Overload("!", {t}));
          return Set(n, Op::kNot, Type::kBool, node.args);
        }
        if (t != Type::kInt && t != Type::kDouble && t != Type::kDyn) {
          Error(node.offset, Overload("-", {t}));
        }
        return Set(n, Op::kNeg, t == Type::kDyn ? Type::kDyn : t, node.args);
      }
      case NodeKind::kBinary:
        return Binary(n);
      case NodeKind::kTernary: {
        const Type c = Check(node.args[0], false);
        const Type a = Check(node.args[1], false);
        const Type b = Check(node.args[2], false);
        if (c != Type::kBool && c != Type::kDyn) {
          Error(node.offset, absl::StrCat("the condition of '?:' must be bool, got ", TypeName(c)));
        }
        for (Type t : {a, b}) {
          if (t == Type::kMessage) Error(node.offset, "a branch of '?:' cannot be a message");
        }
        return Set(n, Op::kTernary, a == b ? a : Type::kDyn, node.args);
      }
    }
    return Type::kDyn;
  }

  static Type MapValueType(Type map) {
    return map == Type::kMapInt ? Type::kInt : map == Type::kMapString ? Type::kString : Type::kDyn;
  }

  Type Select(int n) {
    const Node& node = N(n);
    const Type t = Check(node.args[0], false);
    if (t == Type::kMessage) {
      const Field parent = K(node.args[0]).field;
      const FieldInfo* f = FindField(parent, node.text);
      if (f == nullptr) {
        const std::string owner = Text(node.args[0]);
        // Reported at the start of the path (`action` of `action.typo`), like a compiler
        // underlining the whole expression.
        int start = node.args[0];
        while (N(start).kind == NodeKind::kSelect) start = N(start).args[0];
        Error(N(start).offset, absl::StrCat("unknown field '", node.text, "' in ", owner,
                                            "; its fields are ", FieldNames(parent)));
        return Type::kDyn;
      }
      K(n).field = f->field;
      K(n).can_error = false;
      return Set(n, Op::kField, f->type);
    }
    if (IsMap(t) || t == Type::kDyn) {
      K(n).has_key = true;
      K(n).key = node.text;
      return Set(n, Op::kMapGet, IsMap(t) ? MapValueType(t) : Type::kDyn, {node.args[0]});
    }
    Error(node.offset, absl::StrCat("cannot select field '", node.text, "' from ",
                                    Text(node.args[0]), " of type ", TypeName(t)));
    return Type::kDyn;
  }

  Type Binary(int n) {
    const Node& node = N(n);
    const std::string& op = node.text;
    const Type x = Check(node.args[0], false);
    const Type y = Check(node.args[1], op == "in");
    for (Type t : {x, y}) {
      if (t == Type::kMessage) {
        Error(node.offset, absl::StrCat(Overload(op, {x, y}),
                                        ": select a field of the message, e.g. action.type"));
        return Type::kBool;
      }
    }
    const bool dyn = x == Type::kDyn || y == Type::kDyn;
    if (op == "&&" || op == "||") {
      if ((x != Type::kBool && x != Type::kDyn) || (y != Type::kBool && y != Type::kDyn)) {
        Error(node.offset, Overload(op, {x, y}));
      }
      return Set(n, op == "&&" ? Op::kAnd : Op::kOr, Type::kBool, node.args);
    }
    if (op == "==" || op == "!=") {
      const bool ok = dyn || x == y || (IsNumeric(x) && IsNumeric(y)) || x == Type::kNull ||
                      y == Type::kNull || (IsList(x) && IsList(y));
      if (!ok || IsMap(x) || IsMap(y)) Error(node.offset, Overload(op, {x, y}));
      return Set(n, op == "==" ? Op::kEq : Op::kNe, Type::kBool, node.args);
    }
    if (op == "<" || op == "<=" || op == ">" || op == ">=") {
      auto orderable = [](Type t) {
        return IsNumeric(t) || t == Type::kString || t == Type::kBool || t == Type::kDyn;
      };
      const bool ok =
          orderable(x) && orderable(y) && (dyn || (IsNumeric(x) && IsNumeric(y)) || x == y);
      if (!ok) Error(node.offset, Overload(op, {x, y}));
      const Op o = op == "<" ? Op::kLt : op == "<=" ? Op::kLe : op == ">" ? Op::kGt : Op::kGe;
      return Set(n, o, Type::kBool, node.args);
    }
    if (op == "in") {
      const bool container = IsList(y) || IsMap(y) || y == Type::kDyn;
      if (!container || IsList(x) || IsMap(x)) {
        Error(node.offset, Overload("in", {x, y}));
        return Type::kBool;
      }
      if (IsMap(y) && x != Type::kString && x != Type::kDyn) {
        Error(node.offset, Overload("in", {x, y}));
      }
      // CEL's `in` over a list is (A, list(A)): `1 in action.requested_scopes` and
      // `'a' in [1, 2]` are type errors. Numbers of any kind compare, as with ==.
      if (const std::optional<Type> element = ElementType(node.args[1], y);
          element.has_value() && x != Type::kDyn && x != Type::kNull && x != *element &&
          !(IsNumeric(x) && IsNumeric(*element))) {
        Error(node.offset, absl::StrCat("no matching overload for 'in' applied to (", TypeName(x),
                                        ", list(", TypeName(*element), "))"));
      }
      Set(n, Op::kIn, Type::kBool, node.args);
      const Node& list = N(node.args[1]);
      if (list.kind == NodeKind::kList && list.args.size() > 8 &&
          std::all_of(list.args.begin(), list.args.end(),
                      [&](int a) { return N(a).kind == NodeKind::kString; })) {
        auto set = std::make_unique<absl::flat_hash_set<std::string>>();
        for (int a : list.args) set->insert(N(a).text);
        K(n).string_set = std::move(set);
      }
      return Type::kBool;
    }
    // Arithmetic.
    if (op == "+" && x == Type::kString && y == Type::kString) {
      Error(node.offset, "string concatenation is not supported in triggers");
      return Type::kString;
    }
    if (op == "+" && IsList(x) && IsList(y)) {
      Error(node.offset, "list concatenation is not supported in triggers");
      return Type::kListDyn;
    }
    bool ok;
    Type result;
    if (dyn) {
      const Type known = x == Type::kDyn ? y : x;
      ok = known == Type::kDyn || IsNumeric(known);
      result = known;
    } else {
      ok = x == y && IsNumeric(x);
      result = x;
    }
    if (op == "%" && (x == Type::kDouble || y == Type::kDouble)) ok = false;
    if (!ok) {
      Error(node.offset, Overload(op, {x, y}));
      return Type::kDyn;
    }
    const Op o = op == "+"   ? Op::kAdd
                 : op == "-" ? Op::kSub
                 : op == "*" ? Op::kMul
                 : op == "/" ? Op::kDiv
                             : Op::kMod;
    return Set(n, o, result, node.args);
  }

  // ElementType is the static type of the elements of list n (of type t): string for a
  // list(string) field; for a list literal the type all its elements share (numbers count as
  // one type); nullopt when unknown (dyn, null or mixed elements, an empty literal).
  std::optional<Type> ElementType(int n, Type t) {
    if (t == Type::kListString) return Type::kString;
    const Node& list = N(n);
    if (list.kind != NodeKind::kList || list.args.empty()) return std::nullopt;
    const Type first = K(list.args[0]).type;
    for (int a : list.args) {
      const Type e = K(a).type;
      if (e == Type::kDyn || e == Type::kNull) return std::nullopt;
      if (e != first && !(IsNumeric(e) && IsNumeric(first))) return std::nullopt;
    }
    return first;
  }

  bool Arity(const Node& node, size_t want) {
    const size_t got = node.args.size() - (node.receiver ? 1 : 0);
    if (got == want) return true;
    Error(node.offset, absl::StrCat("'", node.text, "' takes ", want,
                                    want == 1 ? " argument" : " arguments", ", got ", got));
    return false;
  }

  Type Call(int n) {
    const Node& node = N(n);
    const std::string& f = node.text;
    if (f == "has") {
      if (node.receiver || !Arity(node, 1)) {
        if (node.receiver) Error(node.offset, "has() is a macro: write has(x.f)");
        return Type::kBool;
      }
      const int arg = node.args[0];
      if (N(arg).kind != NodeKind::kSelect) {
        Error(N(arg).offset, "has() needs a field selection, e.g. has(attributes.discount_pct)");
        return Type::kBool;
      }
      const int operand = N(arg).args[0];
      const Type t = Check(operand, false);
      if (t == Type::kMessage) {
        const FieldInfo* info = FindField(K(operand).field, N(arg).text);
        if (info == nullptr) {
          int start = operand;
          while (N(start).kind == NodeKind::kSelect) start = N(start).args[0];
          Error(N(start).offset,
                absl::StrCat("unknown field '", N(arg).text, "' in ", Text(operand),
                             "; its fields are ", FieldNames(K(operand).field)));
          return Type::kBool;
        }
        K(n).field = info->field;
        K(n).can_error = false;
        return Set(n, Op::kHasField, Type::kBool);
      }
      if (IsMap(t) || t == Type::kDyn) {
        K(n).key = N(arg).text;
        K(n).has_key = true;
        K(n).can_error = K(operand).can_error || t == Type::kDyn;
        return Set(n, Op::kHasKey, Type::kBool, {operand});
      }
      Error(N(arg).offset, absl::StrCat("has() cannot test field '", N(arg).text, "' of ",
                                        Text(operand), " of type ", TypeName(t)));
      return Type::kBool;
    }
    if (f == "size") {
      if (!Arity(node, node.receiver ? 0 : 1)) return Type::kInt;
      const Type t = Check(node.args[0], true);
      if (t != Type::kString && !IsList(t) && !IsMap(t) && t != Type::kDyn) {
        Error(node.offset, Overload("size", {t}));
      }
      K(n).can_error = t == Type::kDyn || K(node.args[0]).can_error;
      return Set(n, Op::kSize, Type::kInt, {node.args[0]});
    }
    if (f == "contains" || f == "startsWith" || f == "endsWith") {
      if (!node.receiver) {
        Error(node.offset, absl::StrCat("'", f, "' is a method: write s.", f, "(t)"));
        return Type::kBool;
      }
      if (!Arity(node, 1)) return Type::kBool;
      const Type s = Check(node.args[0], false);
      const Type t = Check(node.args[1], false);
      if ((s != Type::kString && s != Type::kDyn) || (t != Type::kString && t != Type::kDyn)) {
        Error(node.offset, Overload(f, {s, t}));
      }
      const Op op = f == "contains"     ? Op::kContains
                    : f == "startsWith" ? Op::kStartsWith
                                        : Op::kEndsWith;
      return Set(n, op, Type::kBool, {node.args[0], node.args[1]});
    }
    if (f == "matches") {
      if (node.args.size() != 2) {
        Error(node.offset, absl::StrCat("'matches' takes 1 argument, got ",
                                        node.args.size() - (node.receiver ? 1 : 0)));
        return Type::kBool;
      }
      const Type s = Check(node.args[0], false);
      if (s != Type::kString && s != Type::kDyn) Error(node.offset, Overload("matches", {s}));
      const Node& pattern = N(node.args[1]);
      if (pattern.kind != NodeKind::kString) {
        Error(pattern.offset,
              "the pattern of matches() must be a string literal (it is compiled once)");
        return Type::kBool;
      }
      RE2::Options options;
      options.set_log_errors(false);
      auto re = std::make_unique<RE2>(pattern.text, options);
      if (!re->ok()) {
        Error(pattern.offset, absl::StrCat("invalid regular expression: ", re->error()));
        return Type::kBool;
      }
      K(n).regex = std::move(re);
      return Set(n, Op::kMatches, Type::kBool, {node.args[0]});
    }
    if (f == "int" || f == "uint" || f == "double" || f == "string") {
      if (node.receiver) {
        Error(node.offset, absl::StrCat("'", f, "' is a function: write ", f, "(x)"));
        return Type::kDyn;
      }
      if (!Arity(node, 1)) return Type::kDyn;
      const Type t = Check(node.args[0], false);
      const bool ok = f == "string" ? (t == Type::kString || t == Type::kDyn)
                                    : (IsNumeric(t) || t == Type::kString || t == Type::kDyn);
      if (!ok) {
        Error(node.offset,
              f == "string" && IsNumeric(t)
                  ? absl::StrCat("string() of ", TypeName(t), " is not supported in triggers")
                  : Overload(f, {t}));
      }
      const Op op = f == "int"      ? Op::kToInt
                    : f == "uint"   ? Op::kToUint
                    : f == "double" ? Op::kToDouble
                                    : Op::kToString;
      const Type result = f == "int"      ? Type::kInt
                          : f == "uint"   ? Type::kUint
                          : f == "double" ? Type::kDouble
                                          : Type::kString;
      return Set(n, op, result, {node.args[0]});
    }
    if (f == "count") {
      if (node.receiver) {
        Error(node.offset, "'count' is a function: write count(\"signal\", \"10m\")");
        return Type::kInt;
      }
      if (!Arity(node, 2)) return Type::kInt;
      const Node& signal = N(node.args[0]);
      const Node& window = N(node.args[1]);
      if (signal.kind != NodeKind::kString || signal.text.empty()) {
        Error(signal.offset, "the signal of count() must be a non-empty string literal");
        return Type::kInt;
      }
      if (window.kind != NodeKind::kString) {
        Error(window.offset, "the window of count() must be a string literal such as \"10m\"");
        return Type::kInt;
      }
      absl::StatusOr<absl::Duration> d = ParseDuration(window.text);
      if (!d.ok()) {
        Error(window.offset, absl::StrCat("invalid window: ", d.status().message()));
        return Type::kInt;
      }
      K(n).key = signal.text;
      K(n).window = *d;
      K(n).can_error = false;
      return Set(n, Op::kCount, Type::kInt);
    }
    Error(node.offset, absl::StrCat("unknown function '", f, "'"));
    return Type::kDyn;
  }

  CompiledExpr& e_;
  std::vector<Issue>& errors_;
};

}  // namespace

void Check(CompiledExpr* expr, std::vector<Issue>* errors) { Checker(*expr, *errors).Run(); }

}  // namespace agate::engine::expr::internal
