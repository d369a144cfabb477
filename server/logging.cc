#include "server/logging.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "common/json_string.h"
#include "google/protobuf/stubs/logging.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace agate::server {
namespace {

// %* : the message, JSON-escaped.
class JsonMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string escaped =
        JsonEscape(absl::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessage>();
  }
};

// The innermost LogContext of this thread.
thread_local const LogContext* current_context = nullptr;

// The last error libprotobuf logged on this thread (TakeProtobufError).
thread_local std::string last_protobuf_error;

}  // namespace

// %& : the LogContext's fields, each as ,"name":"value".
class JsonContext : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const LogContext* context = current_context;
    if (context == nullptr) return;
    std::string fields;
    if (!context->principal_.empty()) {
      absl::StrAppend(&fields, R"(,"principal":")", JsonEscape(context->principal_), "\"");
    }
    if (!context->case_id_.empty()) {
      absl::StrAppend(&fields, R"(,"case_id":")", JsonEscape(context->case_id_), "\"");
    }
    dest.append(fields.data(), fields.data() + fields.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonContext>();
  }
};

LogContext::LogContext(absl::string_view principal, absl::string_view case_id)
    : outer_(current_context), principal_(principal), case_id_(case_id) {
  current_context = this;
}

LogContext::~LogContext() { current_context = outer_; }

void RouteProtobufLogs() {
  google::protobuf::SetLogHandler(
      [](google::protobuf::LogLevel level, const char* file, int line, const std::string& message) {
        if (level >= google::protobuf::LOGLEVEL_ERROR) last_protobuf_error = message;
        spdlog::debug("libprotobuf {}:{}: {}", file, line, message);
      });
}

std::string TakeProtobufError() { return std::exchange(last_protobuf_error, std::string()); }

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view text) {
  static constexpr struct {
    absl::string_view name;
    LogLevel level;
  } kLevels[] = {{"trace", LogLevel::kTrace}, {"debug", LogLevel::kDebug},
                 {"info", LogLevel::kInfo},   {"warn", LogLevel::kWarn},
                 {"error", LogLevel::kError}, {"off", LogLevel::kOff}};
  for (const auto& l : kLevels) {
    if (text == l.name) return l.level;
  }
  return absl::InvalidArgumentError(absl::StrCat("--log-level: unknown level '", text,
                                                 "'; one of trace, debug, info, warn, error, off"));
}

absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view text) {
  if (text == "text") return LogFormat::kText;
  if (text == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("--log-format: unknown format '", text, "'; one of text, json"));
}

void SetUpLogging(LogLevel level, LogFormat format) {
  static constexpr spdlog::level::level_enum kSpdlog[] = {
      spdlog::level::trace, spdlog::level::debug, spdlog::level::info,
      spdlog::level::warn,  spdlog::level::err,   spdlog::level::off};
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  if (format == LogFormat::kJson) {
    formatter->add_flag<JsonMessage>('*').add_flag<JsonContext>('&').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","msg":"%*"%&})");
  } else {
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v");
  }
  auto logger =
      std::make_shared<spdlog::logger>("agate", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_formatter(std::move(formatter));
  logger->set_level(kSpdlog[static_cast<int>(level)]);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace agate::server
