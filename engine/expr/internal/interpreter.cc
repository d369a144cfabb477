#include "engine/expr/internal/interpreter.h"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/struct.pb.h"
#include "re2/re2.h"

namespace agate::engine::expr::internal {
namespace {

size_t CodePoints(absl::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// A per-thread key buffer: a run-time map key as std::string without allocating once warm.
const std::string& KeyBuffer(absl::string_view key) {
  thread_local std::string buffer;
  buffer.assign(key.data(), key.size());
  return buffer;
}

class Machine {
 public:
  Machine(const CompiledExpr& e, const Request& r, const EvalContext& c) : e_(e), r_(r), c_(c) {}

  Val Eval(int n) const {
    const Compiled& k = e_.nodes[n];
    switch (k.op) {
      case Op::kConst:
        return k.constant;
      case Op::kField:
        return ReadField(k.field);
      case Op::kMapGet: {
        const Val map = Eval(k.a[0]);
        if (map.is_error()) return map;
        if (k.has_key) return MapGet(map, k.key, n);
        const Val key = Eval(k.a[1]);
        if (key.is_error()) return key;
        if (key.kind != VK::kString) return Val::Err(ErrorCode::kNoSuchOverload, n);
        return MapGet(map, KeyBuffer(key.s), n);
      }
      case Op::kListIndex:
      case Op::kDynIndex: {
        const Val target = Eval(k.a[0]);
        if (target.is_error()) return target;
        const Val index = Eval(k.a[1]);
        if (index.is_error()) return index;
        if (target.kind == VK::kMapInt || target.kind == VK::kMapString ||
            target.kind == VK::kMapDyn) {
          if (index.kind != VK::kString) return Val::Err(ErrorCode::kNoSuchOverload, n);
          return MapGet(target, KeyBuffer(index.s), n);
        }
        return ListIndex(target, index, n);
      }
      case Op::kNot: {
        const Val x = Eval(k.a[0]);
        if (x.is_error()) return x;
        if (x.kind != VK::kBool) return Val::Err(ErrorCode::kNoSuchOverload, n);
        return Val::Bool(!x.b);
      }
      case Op::kNeg: {
        const Val x = Eval(k.a[0]);
        if (x.is_error()) return x;
        if (x.kind == VK::kInt) {
          if (x.i == std::numeric_limits<int64_t>::min()) {
            return Val::Err(ErrorCode::kOverflow, n);
          }
          return Val::Int(-x.i);
        }
        if (x.kind == VK::kDouble) return Val::Double(-x.d);
        return Val::Err(ErrorCode::kNoSuchOverload, n);
      }
      case Op::kAnd:
      case Op::kOr: {
        // CEL's commutative logic: a decisive operand wins over an error on either side.
        const bool decisive = k.op == Op::kOr;
        const Val x = Eval(k.a[0]);
        if (x.kind == VK::kBool && x.b == decisive) return x;
        const Val y = Eval(k.a[1]);
        if (y.kind == VK::kBool && y.b == decisive) return y;
        if (x.is_error()) return x;
        if (x.kind != VK::kBool) return Val::Err(ErrorCode::kNoSuchOverload, n);
        if (y.is_error()) return y;
        if (y.kind != VK::kBool) return Val::Err(ErrorCode::kNoSuchOverload, n);
        return Val::Bool(!decisive);
      }
      case Op::kTernary: {
        const Val c = Eval(k.a[0]);
        if (c.is_error()) return c;
        if (c.kind != VK::kBool) return Val::Err(ErrorCode::kNoSuchOverload, n);
        return Eval(c.b ? k.a[1] : k.a[2]);
      }
      case Op::kEq:
      case Op::kNe: {
        const Val x = Eval(k.a[0]);
        if (x.is_error()) return x;
        const Val y = Eval(k.a[1]);
        if (y.is_error()) return y;
        const std::optional<bool> eq = Equal(x, y);
        if (!eq.has_value()) return Val::Err(ErrorCode::kNoSuchOverload, n);
        return Val::Bool(k.op == Op::kEq ? *eq : !*eq);
      }
      case Op::kLt:
      case Op::kLe:
      case Op::kGt:
      case Op::kGe: {
        const Val x = Eval(k.a[0]);
        if (x.is_error()) return x;
        const Val y = Eval(k.a[1]);
        if (y.is_error()) return y;
        Order o;
        if (x.is_number() && y.is_number()) {
          o = CompareNumbers(x, y);
        } else if (x.kind == VK::kString && y.kind == VK::kString) {
          const int c = x.s.compare(y.s);
          o = c < 0 ? Order::kLess : c > 0 ? Order::kGreater : Order::kEqual;
        } else if (x.kind == VK::kBool && y.kind == VK::kBool) {
          o = Cmp(static_cast<int64_t>(x.b), static_cast<int64_t>(y.b));
        } else {
          return Val::Err(ErrorCode::kNoSuchOverload, n);
        }
        if (o == Order::kUnordered) return Val::Bool(false);
        switch (k.op) {
          case Op::kLt:
            return Val::Bool(o == Order::kLess);
          case Op::kLe:
            return Val::Bool(o != Order::kGreater);
          case Op::kGt:
            return Val::Bool(o == Order::kGreater);
          default:
            return Val::Bool(o != Order::kLess);
        }
      }
      case Op::kAdd:
      case Op::kSub:
      case Op::kMul:
      case Op::kDiv:
      case Op::kMod: {
        const Val x = Eval(k.a[0]);
        if (x.is_error()) return x;
        const Val y = Eval(k.a[1]);
        if (y.is_error()) return y;
        return Arithmetic(k.op, x, y, n);
      }
      case Op::kIn:
        return In(k, n);
      case Op::kHasField:
        return Val::Bool(HasField(k.field));
      case Op::kHasKey: {
        const Val map = Eval(k.a[0]);
        if (map.is_error()) return map;
        const Val got = MapGet(map, k.key, n);
        if (got.is_error() && got.error == ErrorCode::kNoSuchKey) return Val::Bool(false);
        if (got.is_error()) return got;
        return Val::Bool(true);
      }
      case Op::kSize: {
        const Val x = Eval(k.a[0]);
        if (x.is_error()) return x;
        switch (x.kind) {
          case VK::kString:
            return Val::Int(static_cast<int64_t>(CodePoints(x.s)));
          case VK::kListString:
            return Val::Int(static_cast<const StringList*>(x.p)->size());
          case VK::kListDyn:
            return Val::Int(static_cast<const google::protobuf::ListValue*>(x.p)->values_size());
          case VK::kMapInt:
            return Val::Int(static_cast<int64_t>(static_cast<const IntMap*>(x.p)->size()));
          case VK::kMapString:
            return Val::Int(static_cast<int64_t>(static_cast<const StringMap*>(x.p)->size()));
          case VK::kMapDyn:
            return Val::Int(static_cast<int64_t>(
                static_cast<const google::protobuf::Struct*>(x.p)->fields().size()));
          case VK::kListLiteral: {
            // A list literal with an element that fails is an error (CEL lists are strict).
            const std::vector<int>& elems = e_.nodes[x.node].a;
            for (int elem : elems) {
              if (!e_.nodes[elem].can_error) continue;
              const Val y = Eval(elem);
              if (y.is_error()) return y;
            }
            return Val::Int(static_cast<int64_t>(elems.size()));
          }
          default:
            return Val::Err(ErrorCode::kNoSuchOverload, n);
        }
      }
      case Op::kContains:
      case Op::kStartsWith:
      case Op::kEndsWith: {
        const Val x = Eval(k.a[0]);
        if (x.is_error()) return x;
        const Val y = Eval(k.a[1]);
        if (y.is_error()) return y;
        if (x.kind != VK::kString || y.kind != VK::kString) {
          return Val::Err(ErrorCode::kNoSuchOverload, n);
        }
        if (k.op == Op::kContains) return Val::Bool(x.s.find(y.s) != absl::string_view::npos);
        if (k.op == Op::kStartsWith) return Val::Bool(x.s.substr(0, y.s.size()) == y.s);
        return Val::Bool(x.s.size() >= y.s.size() && x.s.substr(x.s.size() - y.s.size()) == y.s);
      }
      case Op::kMatches: {
        const Val x = Eval(k.a[0]);
        if (x.is_error()) return x;
        if (x.kind != VK::kString) return Val::Err(ErrorCode::kNoSuchOverload, n);
        return Val::Bool(RE2::PartialMatch(re2::StringPiece(x.s.data(), x.s.size()), *k.regex));
      }
      case Op::kToInt:
      case Op::kToUint:
      case Op::kToDouble:
      case Op::kToString: {
        const Val x = Eval(k.a[0]);
        if (x.is_error()) return x;
        return Convert(k.op, x, n);
      }
      case Op::kCount: {
        if (c_.counter != nullptr) return Val::Int(c_.counter->Count(r_, k.key, k.window));
        auto it = r_.signals().find(k.key);
        return Val::Int(it == r_.signals().end() ? 0 : it->second);
      }
      case Op::kList: {
        Val x;
        x.kind = VK::kListLiteral;
        x.node = n;
        return x;
      }
    }
    return Val::Err(ErrorCode::kNoSuchOverload, n);
  }

  Val ReadField(Field f) const {
    switch (f) {
      case Field::kRequestId:
        return Val::String(r_.request_id());
      case Field::kTenantId:
        return Val::String(r_.tenant_id());
      case Field::kAgentId:
        return Val::String(r_.agent_id());
      case Field::kWorkflowId:
        return Val::String(r_.workflow_id());
      case Field::kItemId:
        return Val::String(r_.item_id());
      case Field::kSignals:
        return Val::Ptr(VK::kMapInt, &r_.signals());
      case Field::kAttributes:
        return Val::Ptr(VK::kMapDyn, &r_.attributes());
      case Field::kEvidence:
        return Val::Ptr(VK::kMapString, &r_.evidence());
      case Field::kActionType:
        return Val::String(r_.action().type());
      case Field::kActionTarget:
        return Val::String(r_.action().target());
      case Field::kActionCustomerFacing:
        return Val::Bool(r_.action().customer_facing());
      case Field::kActionIrreversible:
        return Val::Bool(r_.action().irreversible());
      case Field::kActionCritical:
        return Val::Bool(r_.action().critical());
      case Field::kActionAmount:
        return Val::Double(r_.action().amount());
      case Field::kActionCurrency:
        return Val::String(r_.action().currency());
      case Field::kActionTargetTenantId:
        return Val::String(r_.action().target_tenant_id());
      case Field::kActionRequestedScopes:
        return Val::Ptr(VK::kListString, &r_.action().requested_scopes());
      case Field::kActorCredentialId:
        return Val::String(r_.actor().credential_id());
      case Field::kActorRole:
        return Val::String(r_.actor().role());
      case Field::kActorScopes:
        return Val::Ptr(VK::kListString, &r_.actor().scopes());
      case Field::kActorOnBehalfOf:
        return Val::String(r_.actor().on_behalf_of());
      case Field::kModelConfidence:
        return Val::Double(r_.model().confidence());
      case Field::kModelSentiment:
        return Val::String(r_.model().sentiment());
      case Field::kModelLabels:
        return Val::Ptr(VK::kListString, &r_.model().labels());
      case Field::kApprovalCaseId:
        return Val::String(r_.approval().case_id());
      default:
        return Val::Null();
    }
  }

  // HasField is CEL's proto3 presence: a scalar is present when not its zero value.
  bool HasField(Field f) const {
    switch (f) {
      case Field::kAction:
        return r_.has_action();
      case Field::kActor:
        return r_.has_actor();
      case Field::kModel:
        return r_.has_model();
      case Field::kApproval:
        return r_.has_approval();
      case Field::kSignals:
        return !r_.signals().empty();
      case Field::kAttributes:
        return r_.has_attributes() && !r_.attributes().fields().empty();
      case Field::kEvidence:
        return !r_.evidence().empty();
      default:
        break;
    }
    const Val v = ReadField(f);
    switch (v.kind) {
      case VK::kString:
        return !v.s.empty();
      case VK::kBool:
        return v.b;
      case VK::kDouble:
        return v.d != 0;
      case VK::kListString:
        return !static_cast<const StringList*>(v.p)->empty();
      default:
        return false;
    }
  }

  Val MapGet(const Val& map, const std::string& key, int n) const {
    switch (map.kind) {
      case VK::kMapInt: {
        const IntMap& m = *static_cast<const IntMap*>(map.p);
        auto it = m.find(key);
        return it == m.end() ? Val::Err(ErrorCode::kNoSuchKey, n) : Val::Int(it->second);
      }
      case VK::kMapString: {
        const StringMap& m = *static_cast<const StringMap*>(map.p);
        auto it = m.find(key);
        return it == m.end() ? Val::Err(ErrorCode::kNoSuchKey, n) : Val::String(it->second);
      }
      case VK::kMapDyn: {
        const auto& m = static_cast<const google::protobuf::Struct*>(map.p)->fields();
        auto it = m.find(key);
        return it == m.end() ? Val::Err(ErrorCode::kNoSuchKey, n) : FromProto(it->second);
      }
      default:
        return Val::Err(ErrorCode::kNoSuchOverload, n);
    }
  }

  Val ListIndex(const Val& list, const Val& index, int n) const {
    int64_t i;
    if (index.kind == VK::kInt) {
      i = index.i;
    } else if (index.kind == VK::kUint) {
      i = index.u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
              ? -1
              : static_cast<int64_t>(index.u);
    } else if (index.kind == VK::kDouble && std::trunc(index.d) == index.d &&
               std::abs(index.d) < kTwo63) {
      i = static_cast<int64_t>(index.d);
    } else {
      return Val::Err(ErrorCode::kNoSuchOverload, n);
    }
    if (list.kind == VK::kListString) {
      const StringList& l = *static_cast<const StringList*>(list.p);
      if (i < 0 || i >= l.size()) return Val::Err(ErrorCode::kIndexOutOfRange, n);
      return Val::String(l.Get(static_cast<int>(i)));
    }
    if (list.kind == VK::kListDyn) {
      const auto& l = *static_cast<const google::protobuf::ListValue*>(list.p);
      if (i < 0 || i >= l.values_size()) return Val::Err(ErrorCode::kIndexOutOfRange, n);
      return FromProto(l.values(static_cast<int>(i)));
    }
    if (list.kind == VK::kListLiteral) {
      const std::vector<int>& elems = e_.nodes[list.node].a;
      if (i < 0 || i >= static_cast<int64_t>(elems.size())) {
        return Val::Err(ErrorCode::kIndexOutOfRange, n);
      }
      return Eval(elems[static_cast<size_t>(i)]);
    }
    return Val::Err(ErrorCode::kNoSuchOverload, n);
  }

  // Equal is CEL's heterogeneous equality; nullopt when the values cannot be compared.
  std::optional<bool> Equal(const Val& x, const Val& y) const {
    if (x.is_number() && y.is_number()) return CompareNumbers(x, y) == Order::kEqual;
    if (x.kind != y.kind) {
      const bool x_list = x.kind == VK::kListString || x.kind == VK::kListDyn;
      const bool y_list = y.kind == VK::kListString || y.kind == VK::kListDyn;
      if (x_list && y_list) return ListsEqual(x, y);
      return false;
    }
    switch (x.kind) {
      case VK::kBool:
        return x.b == y.b;
      case VK::kString:
        return x.s == y.s;
      case VK::kNull:
        return true;
      case VK::kListString:
      case VK::kListDyn:
        return ListsEqual(x, y);
      case VK::kMapDyn:
        return StructsEqual(*static_cast<const google::protobuf::Struct*>(x.p),
                            *static_cast<const google::protobuf::Struct*>(y.p));
      default:
        return std::nullopt;
    }
  }

  // StructsEqual is CEL's map equality for JSON objects: the same keys, equal values.
  std::optional<bool> StructsEqual(const google::protobuf::Struct& x,
                                   const google::protobuf::Struct& y) const {
    if (x.fields().size() != y.fields().size()) return false;
    for (const auto& [key, value] : x.fields()) {
      auto it = y.fields().find(key);
      if (it == y.fields().end()) return false;
      std::optional<bool> eq = Equal(FromProto(value), FromProto(it->second));
      if (!eq.has_value() || !*eq) return eq;
    }
    return true;
  }

  size_t ListSize(const Val& l) const {
    return l.kind == VK::kListString
               ? static_cast<size_t>(static_cast<const StringList*>(l.p)->size())
               : static_cast<size_t>(
                     static_cast<const google::protobuf::ListValue*>(l.p)->values_size());
  }
  Val ListAt(const Val& l, size_t i) const {
    if (l.kind == VK::kListString) {
      return Val::String(static_cast<const StringList*>(l.p)->Get(static_cast<int>(i)));
    }
    return FromProto(
        static_cast<const google::protobuf::ListValue*>(l.p)->values(static_cast<int>(i)));
  }
  std::optional<bool> ListsEqual(const Val& x, const Val& y) const {
    if (ListSize(x) != ListSize(y)) return false;
    for (size_t i = 0; i < ListSize(x); ++i) {
      std::optional<bool> eq = Equal(ListAt(x, i), ListAt(y, i));
      if (!eq.has_value() || !*eq) return eq;
    }
    return true;
  }

  Val In(const Compiled& k, int n) const {
    const Val x = Eval(k.a[0]);
    if (x.is_error()) return x;
    if (k.string_set != nullptr) {
      return Val::Bool(x.kind == VK::kString && k.string_set->contains(x.s));
    }
    const Val c = Eval(k.a[1]);
    if (c.is_error()) return c;
    switch (c.kind) {
      case VK::kListLiteral: {
        // CEL builds the list before `in` looks into it, and a list with an element that fails
        // is an error: `1 in [1, attributes.missing]` fails. Once found, only the elements that
        // can fail are still evaluated.
        bool found = false;
        for (int elem : e_.nodes[c.node].a) {
          if (found && !e_.nodes[elem].can_error) continue;
          const Val y = Eval(elem);
          if (y.is_error()) return y;
          found = found || Equal(x, y).value_or(false);
        }
        return Val::Bool(found);
      }
      case VK::kListString:
      case VK::kListDyn:
        for (size_t i = 0; i < ListSize(c); ++i) {
          if (Equal(x, ListAt(c, i)).value_or(false)) return Val::Bool(true);
        }
        return Val::Bool(false);
      case VK::kMapInt:
      case VK::kMapString:
      case VK::kMapDyn: {
        if (x.kind != VK::kString) return Val::Err(ErrorCode::kNoSuchOverload, n);
        const Val got = MapGet(c, KeyBuffer(x.s), n);
        return Val::Bool(!got.is_error());
      }
      default:
        return Val::Err(ErrorCode::kNoSuchOverload, n);
    }
  }

  static Val Arithmetic(Op op, const Val& x, const Val& y, int n) {
    if (x.kind != y.kind || !x.is_number()) return Val::Err(ErrorCode::kNoSuchOverload, n);
    if (x.kind == VK::kDouble) {
      switch (op) {
        case Op::kAdd:
          return Val::Double(x.d + y.d);
        case Op::kSub:
          return Val::Double(x.d - y.d);
        case Op::kMul:
          return Val::Double(x.d * y.d);
        case Op::kDiv:
          return Val::Double(x.d / y.d);
        default:
          return Val::Err(ErrorCode::kNoSuchOverload, n);
      }
    }
    if (x.kind == VK::kInt) {
      int64_t r;
      switch (op) {
        case Op::kAdd:
          if (__builtin_add_overflow(x.i, y.i, &r)) return Val::Err(ErrorCode::kOverflow, n);
          return Val::Int(r);
        case Op::kSub:
          if (__builtin_sub_overflow(x.i, y.i, &r)) return Val::Err(ErrorCode::kOverflow, n);
          return Val::Int(r);
        case Op::kMul:
          if (__builtin_mul_overflow(x.i, y.i, &r)) return Val::Err(ErrorCode::kOverflow, n);
          return Val::Int(r);
        default:
          if (y.i == 0) return Val::Err(ErrorCode::kDivisionByZero, n);
          if (x.i == std::numeric_limits<int64_t>::min() && y.i == -1) {
            return Val::Err(ErrorCode::kOverflow, n);
          }
          return Val::Int(op == Op::kDiv ? x.i / y.i : x.i % y.i);
      }
    }
    uint64_t r;
    switch (op) {
      case Op::kAdd:
        if (__builtin_add_overflow(x.u, y.u, &r)) return Val::Err(ErrorCode::kOverflow, n);
        return Val::Uint(r);
      case Op::kSub:
        if (__builtin_sub_overflow(x.u, y.u, &r)) return Val::Err(ErrorCode::kOverflow, n);
        return Val::Uint(r);
      case Op::kMul:
        if (__builtin_mul_overflow(x.u, y.u, &r)) return Val::Err(ErrorCode::kOverflow, n);
        return Val::Uint(r);
      default:
        if (y.u == 0) return Val::Err(ErrorCode::kDivisionByZero, n);
        return Val::Uint(op == Op::kDiv ? x.u / y.u : x.u % y.u);
    }
  }

  static Val Convert(Op op, const Val& x, int n) {
    switch (op) {
      case Op::kToInt:
        switch (x.kind) {
          case VK::kInt:
            return x;
          case VK::kUint:
            if (x.u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
              return Val::Err(ErrorCode::kOverflow, n);
            }
            return Val::Int(static_cast<int64_t>(x.u));
          case VK::kDouble:
            if (!(x.d > -kTwo63 - 1025 && x.d < kTwo63)) return Val::Err(ErrorCode::kOverflow, n);
            return Val::Int(static_cast<int64_t>(x.d));
          case VK::kString: {
            int64_t v;
            if (!absl::SimpleAtoi(x.s, &v)) return Val::Err(ErrorCode::kInvalidArgument, n);
            return Val::Int(v);
          }
          default:
            return Val::Err(ErrorCode::kNoSuchOverload, n);
        }
      case Op::kToUint:
        switch (x.kind) {
          case VK::kUint:
            return x;
          case VK::kInt:
            if (x.i < 0) return Val::Err(ErrorCode::kOverflow, n);
            return Val::Uint(static_cast<uint64_t>(x.i));
          case VK::kDouble:
            // Negative doubles fail, including those that truncate to 0 (CEL: uint(-0.5) is
            // an error).
            if (!(x.d >= 0 && x.d < kTwo64)) return Val::Err(ErrorCode::kOverflow, n);
            return Val::Uint(static_cast<uint64_t>(x.d));
          case VK::kString: {
            uint64_t v;
            if (!absl::SimpleAtoi(x.s, &v)) return Val::Err(ErrorCode::kInvalidArgument, n);
            return Val::Uint(v);
          }
          default:
            return Val::Err(ErrorCode::kNoSuchOverload, n);
        }
      case Op::kToDouble:
        switch (x.kind) {
          case VK::kDouble:
            return x;
          case VK::kInt:
            return Val::Double(static_cast<double>(x.i));
          case VK::kUint:
            return Val::Double(static_cast<double>(x.u));
          case VK::kString: {
            double v;
            if (!absl::SimpleAtod(x.s, &v)) return Val::Err(ErrorCode::kInvalidArgument, n);
            return Val::Double(v);
          }
          default:
            return Val::Err(ErrorCode::kNoSuchOverload, n);
        }
      default:
        if (x.kind == VK::kString) return x;
        return Val::Err(ErrorCode::kNoSuchOverload, n);
    }
  }

 private:
  const CompiledExpr& e_;
  const Request& r_;
  const EvalContext& c_;
};

}  // namespace

Outcome Evaluate(const CompiledExpr& expr, const Request& request, const EvalContext& context) {
  const Machine machine(expr, request, context);
  const Val v = machine.Eval(expr.ast.root);
  if (v.kind == VK::kBool) return v.b ? Outcome::True() : Outcome::False();
  if (v.is_error()) return Outcome::Error(v.error, expr.ast.nodes[v.node].offset);
  return Outcome::Error(ErrorCode::kNotBool, 0);
}

Val Eval(const CompiledExpr& expr, const Request& request, const EvalContext& context, int n) {
  return Machine(expr, request, context).Eval(n);
}

Val ReadField(const CompiledExpr& expr, const Request& request, const EvalContext& context,
              Field f) {
  return Machine(expr, request, context).ReadField(f);
}

}  // namespace agate::engine::expr::internal
