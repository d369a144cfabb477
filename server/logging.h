// Logging setup for agate-server: spdlog to stderr, as text or as JSON lines.
//
// Text: "2026-11-24T10:00:00.123Z info listening on 127.0.0.1:7878".
// JSON: {"time":"2026-11-24T10:00:00.123Z","level":"info","msg":"listening on 127.0.0.1:7878"}
// (one object per line, the message JSON-escaped). Per-request logs are at debug level only.
#ifndef AGATE_SERVER_LOGGING_H_
#define AGATE_SERVER_LOGGING_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace agate::server {

// SetUpLogging configures the default logger. INVALID_ARGUMENT naming --log-level or
// --log-format for an unknown value.
absl::Status SetUpLogging(absl::string_view level, absl::string_view format);

// JsonEscape returns s as the contents of a JSON string (without the quotes); see
// common/json_string.h.
std::string JsonEscape(absl::string_view s);

// RouteProtobufLogs sends libprotobuf's own log lines to spdlog at debug level (a client sending
// undecodable requests must not be able to flood the log) and remembers, per thread, the last
// error it reported, so that a failed parse can say why (TakeProtobufError).
void RouteProtobufLogs();
// TakeProtobufError returns and clears the calling thread's last libprotobuf error ("" if none).
std::string TakeProtobufError();

}  // namespace agate::server

#endif  // AGATE_SERVER_LOGGING_H_
