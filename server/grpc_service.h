// GrpcService: the agate.v1.Agate service over gRPC's callback API; a thin adapter from the wire
// to server::Service (decode, call, map the status). No decision logic here.
#ifndef AGATE_SERVER_GRPC_SERVICE_H_
#define AGATE_SERVER_GRPC_SERVICE_H_

#include <memory>

#include "agate/v1/agate.grpc.pb.h"
#include "server/approver.h"
#include "server/service.h"

namespace agate::server {

class GrpcService final : public v1::Agate::CallbackService {
 public:
  // service and identity must outlive this object.
  GrpcService(server::Service& service, const ApproverIdentity& identity)
      : service_(service), identity_(identity) {}

  grpc::ServerUnaryReactor* Evaluate(grpc::CallbackServerContext* context,
                                     const v1::EvaluateRequest* request,
                                     v1::EvaluateResponse* response) override;
  grpc::ServerUnaryReactor* Acknowledge(grpc::CallbackServerContext* context,
                                        const v1::AcknowledgeRequest* request,
                                        v1::AcknowledgeResponse* response) override;
  grpc::ServerUnaryReactor* GetCase(grpc::CallbackServerContext* context,
                                    const v1::GetCaseRequest* request,
                                    v1::GetCaseResponse* response) override;
  grpc::ServerUnaryReactor* ListCases(grpc::CallbackServerContext* context,
                                      const v1::ListCasesRequest* request,
                                      v1::ListCasesResponse* response) override;
  grpc::ServerWriteReactor<v1::CaseEvent>* WatchCases(
      grpc::CallbackServerContext* context, const v1::WatchCasesRequest* request) override;
  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* context,
                                     const v1::GetStatsRequest* request,
                                     v1::GetStatsResponse* response) override;

 private:
  server::Service& service_;
  const ApproverIdentity& identity_;
};

}  // namespace agate::server

#endif  // AGATE_SERVER_GRPC_SERVICE_H_
