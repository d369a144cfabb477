#include "common/proto_time.h"

#include <algorithm>

namespace agate {

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  // The range google.protobuf.Timestamp allows: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
  constexpr int64_t kMinSeconds = -62135596800;
  constexpr int64_t kMaxSeconds = 253402300799;
  const int64_t seconds = std::clamp(absl::ToUnixSeconds(t), kMinSeconds, kMaxSeconds);
  const int64_t nanos = seconds == absl::ToUnixSeconds(t)
                            ? absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds))
                            : 0;
  google::protobuf::Timestamp ts;
  ts.set_seconds(seconds);
  ts.set_nanos(static_cast<int32_t>(nanos));
  return ts;
}

absl::Time FromTimestamp(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

google::protobuf::Duration ToDurationProto(absl::Duration d) {
  google::protobuf::Duration out;
  const int64_t seconds = absl::IDivDuration(d, absl::Seconds(1), &d);
  out.set_seconds(seconds);
  out.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d)));
  return out;
}

absl::Duration FromDurationProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

}  // namespace agate
