#include "engine/expr/internal/analysis.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/expr/internal/interpreter.h"
#include "engine/expr/internal/values.h"
#include "engine/expr/schema.h"
#include "engine/expr/syntax.h"
#include "engine/request.h"

namespace agate::engine::expr::internal {
namespace {

class Analysis {
 public:
  Analysis(CompiledExpr& e, std::vector<Issue>& warnings) : e_(e), warnings_(warnings) {}

  void Run() {
    Walk(e_.ast.root, {});
    e_.constant = ConstBool(e_.ast.root);
    e_.action_types = ActionTypes(e_.ast.root);
  }

  // ActionTypes finds a top-level conjunct that pins action.type to literals.
  std::optional<std::vector<std::string>> ActionTypes(int n) const {
    const Compiled& k = K(n);
    if (k.op == Op::kAnd) {
      if (auto left = ActionTypes(k.a[0])) return left;
      return ActionTypes(k.a[1]);
    }
    auto is_type = [&](int x) { return K(x).op == Op::kField && K(x).field == Field::kActionType; };
    auto literal = [&](int x) -> const std::string* {
      return N(x).kind == NodeKind::kString ? &N(x).text : nullptr;
    };
    if (k.op == Op::kEq) {
      for (int side = 0; side < 2; ++side) {
        if (is_type(k.a[side]) && literal(k.a[1 - side]) != nullptr) {
          return std::vector<std::string>{*literal(k.a[1 - side])};
        }
      }
    }
    if (k.op == Op::kIn && is_type(k.a[0]) && N(k.a[1]).kind == NodeKind::kList) {
      std::vector<std::string> types;
      for (int e : N(k.a[1]).args) {
        if (literal(e) == nullptr) return std::nullopt;
        types.push_back(*literal(e));
      }
      return types;
    }
    return std::nullopt;
  }

 private:
  const Node& N(int n) const { return e_.ast.nodes[n]; }
  const Compiled& K(int n) const { return e_.nodes[n]; }

  int Start(int n) const {
    const Node& node = N(n);
    if ((node.kind == NodeKind::kSelect || node.kind == NodeKind::kIndex ||
         (node.kind == NodeKind::kCall && node.receiver) || node.kind == NodeKind::kBinary ||
         node.kind == NodeKind::kTernary) &&
        !node.args.empty()) {
      return std::min(node.offset, Start(node.args[0]));
    }
    return node.offset;
  }

  void AddField(const std::string& path) {
    if (std::find(e_.fields.begin(), e_.fields.end(), path) == e_.fields.end()) {
      e_.fields.push_back(path);
    }
  }
  // ReadText is what Observe reports a read as: has(x.f) reads x.f.
  const std::string& ReadText(int n) const {
    return K(n).op == Op::kHasField ? e_.texts[N(n).args[0]] : e_.texts[n];
  }
  void AddRead(int n) {
    for (int r : e_.reads) {
      if (ReadText(r) == ReadText(n)) return;
    }
    e_.reads.push_back(n);
  }

  // GuardId names a map key read: the map's text and the key.
  std::string GuardId(int map, const std::string& key) const {
    return absl::StrCat(e_.texts[map], "\x1f", key);
  }
  // Guards returns the keys known present when n is true (negated: when n is false).
  void Guards(int n, bool negated, std::vector<std::string>& out) const {
    const Node& node = N(n);
    const Compiled& k = K(n);
    if (!negated && k.op == Op::kHasKey) out.push_back(GuardId(k.a[0], k.key));
    if (!negated && k.op == Op::kIn && N(node.args[0]).kind == NodeKind::kString) {
      out.push_back(GuardId(node.args[1], N(node.args[0]).text));
    }
    if (k.op == Op::kNot) Guards(k.a[0], !negated, out);
    if ((k.op == Op::kAnd && !negated) || (k.op == Op::kOr && negated)) {
      Guards(k.a[0], negated, out);
      Guards(k.a[1], negated, out);
    }
  }

  void Walk(int n, std::vector<std::string> guards) {
    const Node& node = N(n);
    const Compiled& k = K(n);
    switch (k.op) {
      case Op::kField: {
        const FieldInfo* f = nullptr;
        for (const FieldInfo& info : AllFields()) {
          if (info.field == k.field) f = &info;
        }
        if (f != nullptr) AddField(std::string(f->path));
        AddRead(n);
        return;
      }
      case Op::kHasField:
        AddField(e_.texts[node.args[0]]);
        AddRead(n);
        return;
      case Op::kHasKey:
        AddField(DottedPath(node.args[0]));
        if (K(k.a[0]).op != Op::kField) Walk(k.a[0], guards);
        return;
      case Op::kMapGet:
        if (k.has_key) {
          AddField(DottedPath(n));
          if (std::find(guards.begin(), guards.end(), GuardId(k.a[0], k.key)) == guards.end() &&
              !Warned(n)) {
            const std::string& text = e_.texts[n];
            warnings_.push_back(Issue{
                Start(n), absl::StrCat(text, " is read without has(", text,
                                       "): a request without it makes the condition fail (the "
                                       "trigger fires)")});
          }
          AddRead(n);
          // The map itself is not a separate read.
          if (K(k.a[0]).op != Op::kField) Walk(k.a[0], guards);
          if (k.a.size() > 1 && K(k.a[1]).op != Op::kConst) Walk(k.a[1], guards);
          return;
        }
        break;
      case Op::kCount:
        AddField(absl::StrCat("signals.", k.key));
        AddRead(n);
        return;
      case Op::kAnd:
      case Op::kOr: {
        Walk(k.a[0], guards);
        std::vector<std::string> more = guards;
        Guards(k.a[0], k.op == Op::kOr, more);
        Walk(k.a[1], more);
        return;
      }
      case Op::kTernary: {
        Walk(k.a[0], guards);
        std::vector<std::string> then = guards, otherwise = guards;
        Guards(k.a[0], false, then);
        Guards(k.a[0], true, otherwise);
        Walk(k.a[1], then);
        Walk(k.a[2], otherwise);
        return;
      }
      default:
        break;
    }
    for (int a : k.a) Walk(a, guards);
  }

  bool Warned(int n) const {
    for (const Issue& w : warnings_) {
      if (w.message.rfind(e_.texts[n] + " is read", 0) == 0) return true;
    }
    return false;
  }

  // DottedPath renders a map read as a dotted path for Fields(): attributes.discount_pct.
  std::string DottedPath(int n) const {
    const Compiled& k = K(n);
    if (k.op == Op::kField) {
      for (const FieldInfo& info : AllFields()) {
        if (info.field == k.field) return std::string(info.path);
      }
    }
    if (k.op == Op::kMapGet && k.has_key) return absl::StrCat(DottedPath(k.a[0]), ".", k.key);
    return e_.texts[n];
  }

  // Interval of a numeric node that cannot fail, from the facts of a valid request.
  std::optional<std::pair<double, double>> Range(int n) const {
    const Compiled& k = K(n);
    constexpr double kInf = std::numeric_limits<double>::infinity();
    switch (k.op) {
      case Op::kConst:
        // Integers compare exactly, so only those a double holds exactly have a range:
        // 9007199254740993 > 9007199254740992.0 is true although the two doubles are equal.
        if (k.constant.kind == VK::kInt) {
          const double d = static_cast<double>(k.constant.i);
          if (d >= 0x1p63 || static_cast<int64_t>(d) != k.constant.i) return std::nullopt;
          return std::make_pair(d, d);
        }
        if (k.constant.kind == VK::kUint) {
          const double d = static_cast<double>(k.constant.u);
          if (d >= 0x1p64 || static_cast<uint64_t>(d) != k.constant.u) return std::nullopt;
          return std::make_pair(d, d);
        }
        if (k.constant.kind == VK::kDouble && !std::isnan(k.constant.d)) {
          return std::make_pair(k.constant.d, k.constant.d);
        }
        return std::nullopt;
      case Op::kField:
        if (k.field == Field::kModelConfidence) return std::make_pair(0.0, 1.0);
        if (k.field == Field::kActionAmount) return std::make_pair(0.0, kInf);
        return std::nullopt;
      case Op::kCount:
        return std::make_pair(0.0, kInf);
      case Op::kSize:
        if (!k.can_error) return std::make_pair(0.0, kInf);
        return std::nullopt;
      default:
        return std::nullopt;
    }
  }

  std::optional<bool> ConstBool(int n) const {
    const Compiled& k = K(n);
    switch (k.op) {
      case Op::kConst:
        if (k.constant.kind == VK::kBool) return k.constant.b;
        return std::nullopt;
      case Op::kNot: {
        std::optional<bool> x = ConstBool(k.a[0]);
        if (x.has_value()) return !*x;
        return std::nullopt;
      }
      case Op::kAnd:
      case Op::kOr: {
        const bool decisive = k.op == Op::kOr;
        const std::optional<bool> x = ConstBool(k.a[0]);
        const std::optional<bool> y = ConstBool(k.a[1]);
        if (x == decisive || y == decisive) return decisive;
        if (x.has_value() && y.has_value()) return !decisive;
        return std::nullopt;
      }
      case Op::kTernary: {
        const std::optional<bool> c = ConstBool(k.a[0]);
        if (!c.has_value()) return std::nullopt;
        return ConstBool(*c ? k.a[1] : k.a[2]);
      }
      case Op::kLt:
      case Op::kLe:
      case Op::kGt:
      case Op::kGe: {
        std::optional<std::pair<double, double>> x = Range(k.a[0]);
        std::optional<std::pair<double, double>> y = Range(k.a[1]);
        if (!x.has_value() || !y.has_value()) return std::nullopt;
        // Normalise to x < y or x <= y.
        if (k.op == Op::kGt || k.op == Op::kGe) std::swap(x, y);
        const bool strict = k.op == Op::kLt || k.op == Op::kGt;
        if (strict ? x->second < y->first : x->second <= y->first) return true;
        if (strict ? x->first >= y->second : x->first > y->second) return false;
        return std::nullopt;
      }
      case Op::kEq:
      case Op::kNe: {
        const Compiled& x = K(k.a[0]);
        const Compiled& y = K(k.a[1]);
        if (x.op != Op::kConst || y.op != Op::kConst) {
          // A ranged value equal to a constant outside its range is constantly false.
          std::optional<std::pair<double, double>> rx = Range(k.a[0]);
          std::optional<std::pair<double, double>> ry = Range(k.a[1]);
          if (rx.has_value() && ry.has_value() &&
              (rx->second < ry->first || ry->second < rx->first)) {
            return k.op == Op::kNe;
          }
          return std::nullopt;
        }
        Request empty;
        const Val v = Eval(e_, empty, EvalContext{}, n);
        if (v.kind == VK::kBool) return v.b;
        return std::nullopt;
      }
      default:
        return std::nullopt;
    }
  }

  CompiledExpr& e_;
  std::vector<Issue>& warnings_;
};

}  // namespace

void Analyze(CompiledExpr* expr, std::vector<Issue>* warnings) { Analysis(*expr, *warnings).Run(); }

}  // namespace agate::engine::expr::internal
