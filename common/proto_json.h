// Proto3 JSON, as agate writes and reads it everywhere (the `agate` CLI, the HTTP API): protobuf's
// own converter (google::protobuf::util), printing proto field names (snake_case), enum names and
// zero values; reading snake_case or lowerCamelCase and refusing unknown fields.
#ifndef AGATE_COMMON_PROTO_JSON_H_
#define AGATE_COMMON_PROTO_JSON_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace agate {

// ToJson prints message on one line ("{}" if protobuf cannot, which a valid message never is).
std::string ToJson(const google::protobuf::Message& message);

// FromJson reads json into message; INVALID_ARGUMENT with protobuf's reason (the field, or the
// position of a syntax error) otherwise.
absl::Status FromJson(absl::string_view json, google::protobuf::Message* message);

}  // namespace agate

#endif  // AGATE_COMMON_PROTO_JSON_H_
