#include "client/offline_eval.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace agate::client {

absl::StatusOr<v1::EvaluateRequest> ParseRequestJson(absl::string_view json) {
  if (absl::StripAsciiWhitespace(json).empty()) {
    return absl::InvalidArgumentError("empty line: not an EvaluateRequest in JSON");
  }
  v1::EvaluateRequest request;
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &request,
      google::protobuf::util::JsonParseOptions());
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an EvaluateRequest in JSON: ", parsed.message().as_string()));
  }
  return request;
}

absl::StatusOr<std::unique_ptr<service::Service>> NewOfflineService(
    std::shared_ptr<const engine::Matrix> matrix, const Clock& clock) {
  service::ServiceOptions options;
  options.idempotency.enabled = false;
  return service::Service::Create(std::move(matrix), clock, options);
}

absl::StatusOr<std::shared_ptr<const engine::Matrix>> LoadMatrixReporting(const std::string& path,
                                                                          std::ostream& errors) {
  std::vector<engine::Diagnostic> diagnostics;
  absl::StatusOr<std::shared_ptr<const engine::Matrix>> matrix =
      engine::LoadMatrixFile(path, &diagnostics);
  for (const engine::Diagnostic& d : diagnostics) {
    if (d.severity == engine::Severity::kError) errors << d.ToString() << "\n";
  }
  return matrix;
}

std::string ResponseJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "{}";
  return out;
}

}  // namespace agate::client
