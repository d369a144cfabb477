#include "server/grpc_service.h"

#include "engine/verdict.h"
#include "server/status.h"
#include "server/watch_reactor.h"
#include "spdlog/spdlog.h"

namespace agate::server {
namespace {

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// Answer moves an OK value into *out, or finishes with the error.
template <typename T, typename Out>
grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* context, absl::StatusOr<T> result,
                                 Out* out) {
  if (result.ok()) *out = *std::move(result);
  return Finish(context, result.status());
}

}  // namespace

grpc::ServerUnaryReactor* GrpcService::Evaluate(grpc::CallbackServerContext* context,
                                                const v1::EvaluateRequest* request,
                                                v1::EvaluateResponse* response) {
  const absl::Status status = service_.Evaluate(*request, response);
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("evaluate request_id={} tenant_id={} -> {} {} {}", request->request_id(),
                  request->tenant_id(), status.ok() ? "OK" : status.ToString(),
                  std::string(engine::VerdictName(response->verdict())), response->case_id());
  }
  return Finish(context, status);
}

grpc::ServerUnaryReactor* GrpcService::Acknowledge(grpc::CallbackServerContext* context,
                                                   const v1::AcknowledgeRequest* request,
                                                   v1::AcknowledgeResponse* response) {
  absl::StatusOr<std::string> approver = identity_.Identify(*context, *request);
  if (!approver.ok()) return Finish(context, approver.status());
  absl::StatusOr<v1::Case> c = service_.Acknowledge({.case_id = request->case_id(),
                                                     .decision = request->decision(),
                                                     .approver = *approver,
                                                     .comment = request->comment()});
  if (c.ok()) {
    spdlog::info("case {} {} by {}", c->id(), c->history().rbegin()->event(), *approver);
  }
  return Answer(context, std::move(c), response->mutable_case_());
}

grpc::ServerUnaryReactor* GrpcService::GetCase(grpc::CallbackServerContext* context,
                                               const v1::GetCaseRequest* request,
                                               v1::GetCaseResponse* response) {
  return Answer(context, service_.GetCase(*request), response->mutable_case_());
}

grpc::ServerUnaryReactor* GrpcService::ListCases(grpc::CallbackServerContext* context,
                                                 const v1::ListCasesRequest* request,
                                                 v1::ListCasesResponse* response) {
  return Answer(context, service_.ListCases(*request), response);
}

grpc::ServerWriteReactor<v1::CaseEvent>* GrpcService::WatchCases(
    grpc::CallbackServerContext* context, const v1::WatchCasesRequest* request) {
  return NewWatchReactor(service_.cases(), *request);
}

grpc::ServerUnaryReactor* GrpcService::GetStats(grpc::CallbackServerContext* context,
                                                const v1::GetStatsRequest* request,
                                                v1::GetStatsResponse* response) {
  *response = service_.Stats();
  return Finish(context, absl::OkStatus());
}

}  // namespace agate::server
