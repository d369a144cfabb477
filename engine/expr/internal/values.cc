#include "engine/expr/internal/values.h"

#include <string>

namespace agate::engine::expr::internal {

void ToProto(const Val& v, google::protobuf::Value* out) {
  switch (v.kind) {
    case VK::kBool:
      out->set_bool_value(v.b);
      break;
    case VK::kInt:
      out->set_number_value(static_cast<double>(v.i));
      break;
    case VK::kUint:
      out->set_number_value(static_cast<double>(v.u));
      break;
    case VK::kDouble:
      out->set_number_value(v.d);
      break;
    case VK::kString:
      out->set_string_value(std::string(v.s));
      break;
    case VK::kListString: {
      auto* list = out->mutable_list_value();
      for (const std::string& s : *static_cast<const StringList*>(v.p)) {
        list->add_values()->set_string_value(s);
      }
      break;
    }
    case VK::kListDyn:
      *out->mutable_list_value() = *static_cast<const google::protobuf::ListValue*>(v.p);
      break;
    case VK::kMapDyn:
      *out->mutable_struct_value() = *static_cast<const google::protobuf::Struct*>(v.p);
      break;
    case VK::kMapInt: {
      auto* fields = out->mutable_struct_value()->mutable_fields();
      for (const auto& [k, n] : *static_cast<const IntMap*>(v.p)) {
        (*fields)[k].set_number_value(static_cast<double>(n));
      }
      break;
    }
    case VK::kMapString: {
      auto* fields = out->mutable_struct_value()->mutable_fields();
      for (const auto& [k, s] : *static_cast<const StringMap*>(v.p)) {
        (*fields)[k].set_string_value(s);
      }
      break;
    }
    default:
      out->set_null_value(google::protobuf::NULL_VALUE);
      break;
  }
}

}  // namespace agate::engine::expr::internal
