#include "common/proto_json.h"

#include "google/protobuf/util/json_util.h"

namespace agate {

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "{}";
  return out;
}

absl::Status FromJson(absl::string_view json, google::protobuf::Message* message) {
  const google::protobuf::util::JsonParseOptions options;  // unknown fields are errors
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), message, options);
  if (parsed.ok()) return absl::OkStatus();
  return absl::InvalidArgumentError(parsed.message().as_string());
}

}  // namespace agate
