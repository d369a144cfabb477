#include "client/client.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "client/grpc_status.h"

namespace agate::client {

absl::StatusOr<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  if (options.target.empty()) return absl::InvalidArgumentError("target: required");
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout: must be positive");
  }
  return std::unique_ptr<Client>(new Client(std::move(options)));
}

Client::Client(ClientOptions options) : options_(std::move(options)) {
  grpc::ChannelArguments args;
  // A down PDP must fail fast, not back off for seconds between reconnection attempts.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  channel_ = grpc::CreateCustomChannel(options_.target, grpc::InsecureChannelCredentials(), args);
  stub_ = v1::Agate::NewStub(channel_);
}

bool Client::IsNoAnswer(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kUnimplemented:
    case absl::StatusCode::kDataLoss:
      return true;
    default:
      return false;
  }
}

absl::StatusOr<v1::EvaluateResponse> Client::Evaluate(const v1::EvaluateRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  v1::EvaluateResponse response;
  const absl::Status status = FromGrpcStatus(stub_->Evaluate(&context, request, &response));
  if (status.ok()) {
    ok_.fetch_add(1, std::memory_order_relaxed);
    if (response.verdict() != v1::VERDICT_ALLOW) {
      escalated_.fetch_add(1, std::memory_order_relaxed);
    }
    return response;
  }
  if (!IsNoAnswer(status)) {
    error_.fetch_add(1, std::memory_order_relaxed);
    return status;
  }
  v1::EvaluateResponse synthetic;
  const bool closed = options_.failure_mode == FailureMode::kFailClosed;
  synthetic.set_verdict(closed ? v1::VERDICT_HOLD : v1::VERDICT_ALLOW);
  synthetic.set_failed_closed(closed);
  synthetic.set_failed_open(!closed);
  synthetic.set_reason(absl::StrCat("agate did not answer (",
                                    absl::StatusCodeToString(status.code()), ": ", status.message(),
                                    "); failing ", closed ? "closed" : "open"));
  (closed ? failed_closed_ : failed_open_).fetch_add(1, std::memory_order_relaxed);
  return synthetic;
}

ClientCounters Client::counters() const {
  return ClientCounters{ok_.load(), escalated_.load(), error_.load(), failed_closed_.load(),
                        failed_open_.load()};
}

}  // namespace agate::client
