// Conversions between absl time types and the protobuf well-known types.
#ifndef AGATE_COMMON_PROTO_TIME_H_
#define AGATE_COMMON_PROTO_TIME_H_

#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace agate {

// ToTimestamp converts t (clamped to the Timestamp range 0001..9999) to a Timestamp.
google::protobuf::Timestamp ToTimestamp(absl::Time t);
// FromTimestamp converts a Timestamp to absl::Time.
absl::Time FromTimestamp(const google::protobuf::Timestamp& ts);
// ToDurationProto converts d (finite) to a Duration.
google::protobuf::Duration ToDurationProto(absl::Duration d);
// FromDurationProto converts a Duration to absl::Duration.
absl::Duration FromDurationProto(const google::protobuf::Duration& d);

}  // namespace agate

#endif  // AGATE_COMMON_PROTO_TIME_H_
