// Logging setup for agate-server: spdlog to stderr, as text or as JSON lines.
//
// Text: "2026-11-24T10:00:00.123Z info listening on 127.0.0.1:7878".
// JSON: {"time":"2026-11-24T10:00:00.123Z","level":"info","msg":"listening on 127.0.0.1:7878"}
// (one object per line, the message JSON-escaped). Per-request logs are at debug level only.
#ifndef AGATE_SERVER_LOGGING_H_
#define AGATE_SERVER_LOGGING_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace agate::server {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kOff };
enum class LogFormat { kText, kJson };

// ParseLogLevel accepts trace, debug, info, warn, error, off; INVALID_ARGUMENT naming --log-level
// otherwise. ParseLogFormat accepts text and json; INVALID_ARGUMENT naming --log-format.
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view text);
absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view text);

// SetUpLogging configures the default logger.
void SetUpLogging(LogLevel level, LogFormat format);

// RouteProtobufLogs sends libprotobuf's own log lines to spdlog at debug level (a client sending
// undecodable requests must not be able to flood the log) and remembers, per thread, the last
// error it reported, so that a failed parse can say why (TakeProtobufError).
void RouteProtobufLogs();
// TakeProtobufError returns and clears the calling thread's last libprotobuf error ("" if none).
std::string TakeProtobufError();

}  // namespace agate::server

#endif  // AGATE_SERVER_LOGGING_H_
