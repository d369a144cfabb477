// The offline evaluation path the `agate` commands share (`eval --matrix`, `test`, `shadow`):
// the eval input format and an in-process Service, so that every offline command reads requests
// and decides them exactly as `agate eval --matrix` does (and that as the server does: the same
// service::Service); and the offline shadow run, which feeds a service::ShadowReport.
//
// The input format is one agate.v1.EvaluateRequest as proto3 JSON (snake_case or lowerCamelCase
// field names, enum names or numbers); unknown fields are errors.
//
// Thread-safe: pure functions.
//
// Example:
//   ASSIGN_OR_RETURN(v1::EvaluateRequest request, ParseRequestJson(line));
//   ASSIGN_OR_RETURN(std::unique_ptr<service::Service> service, NewOfflineService(matrix, clock));
//   v1::EvaluateResponse response;
//   RETURN_IF_ERROR(service->Evaluate(request, &response));
#ifndef AGATE_CLIENT_OFFLINE_EVAL_H_
#define AGATE_CLIENT_OFFLINE_EVAL_H_

#include <istream>
#include <memory>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agate/v1/agate.pb.h"
#include "common/clock.h"
#include "engine/matrix.h"
#include "service/service.h"
#include "service/shadow_report.h"

namespace agate::client {

// ParseRequestJson parses one request in the eval input format. INVALID_ARGUMENT "empty line: not
// an EvaluateRequest in JSON" for blank text, "not an EvaluateRequest in JSON: <why>" otherwise.
absl::StatusOr<v1::EvaluateRequest> ParseRequestJson(absl::string_view json);

// NewOfflineService returns a memory-only Service on matrix whose time is clock's (which must
// outlive it). Idempotency is off: offline every request is evaluated, even one whose
// request_id came before (sample files reuse ids); cases and count() windows carry from request
// to request as in the server.
absl::StatusOr<std::unique_ptr<service::Service>> NewOfflineService(
    std::shared_ptr<const engine::Matrix> matrix, const Clock& clock);

// LoadMatrixReporting loads the matrix at path, writing its errors (FILE:LINE:COL: error: ...)
// to errors; the status is LoadMatrixFile's.
absl::StatusOr<std::shared_ptr<const engine::Matrix>> LoadMatrixReporting(const std::string& path,
                                                                          std::ostream& errors);

// RunOfflineShadow evaluates every line of requests (the `agate eval` input format; blank lines
// are skipped) against both matrices, each in an in-process Service of its own on a virtual
// clock, and returns the report. Eval-format requests carry no time, so the input is taken as
// `span` of traffic: request i of n is decided at start + span * i / n (count() windows and SLA
// timers see that spacing); `lines` is n (0: the requests are decided one second apart). A line
// that is not a request is INVALID_ARGUMENT "NAME:LINE: not an EvaluateRequest in JSON: ...".
absl::StatusOr<service::ShadowReport> RunOfflineShadow(
    std::shared_ptr<const engine::Matrix> live, std::shared_ptr<const engine::Matrix> candidate,
    std::istream& requests, const std::string& name, absl::Duration span, int64_t lines);

}  // namespace agate::client

#endif  // AGATE_CLIENT_OFFLINE_EVAL_H_
