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

// LogContext names the principal and the case a thread's log lines are about while it lives:
// JSON lines get "principal" and "case_id" fields (empty values are left out); text lines are
// unchanged (their messages name both). Nests: the inner context applies until it ends.
//
// Example:
//   LogContext context(caller.principal().subject(), c.id());
//   spdlog::info("case {} approved by {}", c.id(), who);
class LogContext {
 public:
  LogContext(absl::string_view principal, absl::string_view case_id);
  ~LogContext();
  LogContext(const LogContext&) = delete;
  LogContext& operator=(const LogContext&) = delete;

 private:
  const LogContext* outer_;
  absl::string_view principal_;
  absl::string_view case_id_;
  friend class JsonContext;
};

// RouteProtobufLogs sends libprotobuf's own log lines to spdlog at debug level (a client sending
// undecodable requests must not be able to flood the log) and remembers, per thread, the last
// error it reported, so that a failed parse can say why (TakeProtobufError).
void RouteProtobufLogs();
// TakeProtobufError returns and clears the calling thread's last libprotobuf error ("" if none).
std::string TakeProtobufError();

}  // namespace agate::server

#endif  // AGATE_SERVER_LOGGING_H_
