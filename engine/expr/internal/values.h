// Run-time values of agate's CEL subset: Val, and its operations (CEL's exact comparison of
// numbers across int, uint and double; conversion from and to google.protobuf.Value).
//
// Internal to engine/expr. A Val is small and trivially copyable and owns nothing: its strings
// and containers point into the request or the program, which must outlive it. Every function
// here is pure and thread-safe. Run-time errors are values (VK::kError with an ErrorCode and the
// failing node), never exceptions. The comparisons and FromProto are inline: they are on the
// interpreter's hot path.
#ifndef AGATE_ENGINE_EXPR_INTERNAL_VALUES_H_
#define AGATE_ENGINE_EXPR_INTERNAL_VALUES_H_

#include <cmath>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "engine/expr/program.h"
#include "google/protobuf/map.h"
#include "google/protobuf/repeated_field.h"
#include "google/protobuf/struct.pb.h"

namespace agate::engine::expr::internal {

// The kind of a run-time value.
enum class VK : uint8_t {
  kError,
  kBool,
  kInt,
  kUint,
  kDouble,
  kString,
  kNull,
  kListString,
  kListDyn,
  kMapInt,
  kMapString,
  kMapDyn,
  kListLiteral,
};

using StringList = google::protobuf::RepeatedPtrField<std::string>;
using IntMap = google::protobuf::Map<std::string, int64_t>;
using StringMap = google::protobuf::Map<std::string, std::string>;

// A run-time value: small and trivially copyable; strings and containers point into the request
// or the program.
struct Val {
  VK kind = VK::kNull;
  ErrorCode error = ErrorCode::kNone;
  int node = -1;  // kError: the failing node; kListLiteral: the list node
  // The payload `kind` selects (32 bytes in all: Eval returns a Val per node, by value).
  union {
    int64_t i = 0;  // kInt
    bool b;         // kBool
    uint64_t u;     // kUint
    double d;       // kDouble
    const void* p;  // kListString, kListDyn, kMapInt, kMapString, kMapDyn
  };
  absl::string_view s;  // kString

  static Val Bool(bool v) {
    Val x;
    x.kind = VK::kBool;
    x.b = v;
    return x;
  }
  static Val Int(int64_t v) {
    Val x;
    x.kind = VK::kInt;
    x.i = v;
    return x;
  }
  static Val Uint(uint64_t v) {
    Val x;
    x.kind = VK::kUint;
    x.u = v;
    return x;
  }
  static Val Double(double v) {
    Val x;
    x.kind = VK::kDouble;
    x.d = v;
    return x;
  }
  static Val String(absl::string_view v) {
    Val x;
    x.kind = VK::kString;
    x.s = v;
    return x;
  }
  static Val Null() { return Val(); }
  static Val Ptr(VK kind, const void* p) {
    Val x;
    x.kind = kind;
    x.p = p;
    return x;
  }
  static Val Err(ErrorCode code, int node) {
    Val x;
    x.kind = VK::kError;
    x.error = code;
    x.node = node;
    return x;
  }
  bool is_error() const { return kind == VK::kError; }
  bool is_number() const { return kind == VK::kInt || kind == VK::kUint || kind == VK::kDouble; }
};

inline constexpr double kTwo63 = 9223372036854775808.0;
inline constexpr double kTwo64 = 18446744073709551616.0;

// Exact numeric comparison across int, uint and double (CEL's rules).

enum class Order { kLess, kEqual, kGreater, kUnordered };

inline Order Cmp(int64_t a, int64_t b) {
  return a < b ? Order::kLess : a > b ? Order::kGreater : Order::kEqual;
}
inline Order Cmp(uint64_t a, uint64_t b) {
  return a < b ? Order::kLess : a > b ? Order::kGreater : Order::kEqual;
}
inline Order Cmp(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return Order::kUnordered;
  return a < b ? Order::kLess : a > b ? Order::kGreater : Order::kEqual;
}
inline Order Cmp(int64_t a, uint64_t b) {
  if (a < 0) return Order::kLess;
  return Cmp(static_cast<uint64_t>(a), b);
}
inline Order Flip(Order o) {
  return o == Order::kLess ? Order::kGreater : o == Order::kGreater ? Order::kLess : o;
}
inline Order Cmp(int64_t a, double b) {
  if (std::isnan(b)) return Order::kUnordered;
  if (b >= kTwo63) return Order::kLess;
  if (b < -kTwo63) return Order::kGreater;
  const double t = std::trunc(b);
  const Order o = Cmp(a, static_cast<int64_t>(t));
  if (o != Order::kEqual) return o;
  return b > t ? Order::kLess : b < t ? Order::kGreater : Order::kEqual;
}
inline Order Cmp(uint64_t a, double b) {
  if (std::isnan(b)) return Order::kUnordered;
  if (b >= kTwo64) return Order::kLess;
  if (b < 0) return Order::kGreater;
  const double t = std::trunc(b);
  const Order o = Cmp(a, static_cast<uint64_t>(t));
  if (o != Order::kEqual) return o;
  return b > t ? Order::kLess : Order::kEqual;
}

inline Order CompareNumbers(const Val& x, const Val& y) {
  switch (x.kind) {
    case VK::kInt:
      if (y.kind == VK::kInt) return Cmp(x.i, y.i);
      if (y.kind == VK::kUint) return Cmp(x.i, y.u);
      return Cmp(x.i, y.d);
    case VK::kUint:
      if (y.kind == VK::kInt) return Flip(Cmp(y.i, x.u));
      if (y.kind == VK::kUint) return Cmp(x.u, y.u);
      return Cmp(x.u, y.d);
    default:
      if (y.kind == VK::kInt) return Flip(Cmp(y.i, x.d));
      if (y.kind == VK::kUint) return Flip(Cmp(y.u, x.d));
      return Cmp(x.d, y.d);
  }
}

// FromProto views a google.protobuf.Value as a Val pointing into it.
inline Val FromProto(const google::protobuf::Value& v) {
  switch (v.kind_case()) {
    case google::protobuf::Value::kNumberValue:
      return Val::Double(v.number_value());
    case google::protobuf::Value::kStringValue:
      return Val::String(v.string_value());
    case google::protobuf::Value::kBoolValue:
      return Val::Bool(v.bool_value());
    case google::protobuf::Value::kListValue:
      return Val::Ptr(VK::kListDyn, &v.list_value());
    case google::protobuf::Value::kStructValue:
      return Val::Ptr(VK::kMapDyn, &v.struct_value());
    default:
      return Val::Null();
  }
}

// ToProto copies v into *out (lists and maps whole); null, an error or a list literal becomes
// null_value.
void ToProto(const Val& v, google::protobuf::Value* out);

}  // namespace agate::engine::expr::internal

#endif  // AGATE_ENGINE_EXPR_INTERNAL_VALUES_H_
