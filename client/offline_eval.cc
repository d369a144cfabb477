#include "client/offline_eval.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/proto_json.h"

namespace agate::client {

absl::StatusOr<v1::EvaluateRequest> ParseRequestJson(absl::string_view json) {
  if (absl::StripAsciiWhitespace(json).empty()) {
    return absl::InvalidArgumentError("empty line: not an EvaluateRequest in JSON");
  }
  v1::EvaluateRequest request;
  if (absl::Status parsed = FromJson(json, &request); !parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an EvaluateRequest in JSON: ", parsed.message()));
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

absl::StatusOr<service::ShadowReport> RunOfflineShadow(
    std::shared_ptr<const engine::Matrix> live, std::shared_ptr<const engine::Matrix> candidate,
    std::istream& requests, const std::string& name, absl::Duration span, int64_t lines) {
  constexpr int kLive = 0;
  constexpr int kCandidate = 1;
  FakeClock clock;
  const absl::Time start = clock.Now();
  service::ShadowReport report(live, candidate);
  std::unique_ptr<service::Service> services[2];
  for (int s : {kLive, kCandidate}) {
    absl::StatusOr<std::unique_ptr<service::Service>> created =
        NewOfflineService(s == kLive ? live : candidate, clock);
    if (!created.ok()) return created.status();
    services[s] = *std::move(created);
  }
  std::string line;
  v1::EvaluateResponse responses[2];
  for (int64_t number = 1; std::getline(requests, line); ++number) {
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    absl::StatusOr<v1::EvaluateRequest> request = ParseRequestJson(line);
    if (!request.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ":", number, ": ", request.status().message()));
    }
    const absl::Time at = lines > 0 ? start + span * (static_cast<double>(number - 1) / lines)
                                    : start + absl::Seconds(number - 1);
    if (at > clock.Now()) {
      clock.Set(at);
      for (auto& service : services) service->cases().RunDueTimers();
    }
    absl::Status status[2];
    for (int s : {kLive, kCandidate}) {
      responses[s].Clear();
      status[s] = services[s]->Evaluate(*request, &responses[s]);
    }
    auto decided = [&](int s) -> absl::StatusOr<const v1::EvaluateResponse*> {
      if (!status[s].ok()) return status[s];
      return &responses[s];
    };
    report.Add(*request, at, decided(kLive), decided(kCandidate));
  }
  return report;
}

}  // namespace agate::client
