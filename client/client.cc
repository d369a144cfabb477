#include "client/client.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/grpc_status.h"
#include "common/status_macros.h"
#include "grpcpp/grpcpp.h"

namespace agate::client {

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(flag, " ", path, ": cannot be read"));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool IsLoopbackTarget(absl::string_view target) {
  return absl::StartsWith(target, "unix:") || absl::StartsWith(target, "127.") ||
         absl::StartsWith(target, "localhost:") || absl::StartsWith(target, "[::1]:") ||
         absl::StartsWith(target, "ipv4:127.");
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(
    const ClientOptions& options) {
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError("tls_cert and tls_key go together (mutual TLS)");
  }
  const bool tls = !options.tls_ca.empty() || !options.tls_cert.empty();
  if (!options.token.empty() && !tls && !IsLoopbackTarget(options.target)) {
    return absl::InvalidArgumentError(
        absl::StrCat("token: refusing to send a bearer token in the clear to ", options.target,
                     ": give the server's CA (--tls-ca) or use a loopback or unix: target"));
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (tls) {
    grpc::SslCredentialsOptions ssl;
    if (!options.tls_ca.empty()) {
      ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFile(options.tls_ca, "--tls-ca"));
    }
    if (!options.tls_cert.empty()) {
      ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadFile(options.tls_cert, "--tls-cert"));
      ASSIGN_OR_RETURN(ssl.pem_private_key, ReadFile(options.tls_key, "--tls-key"));
    }
    credentials = grpc::SslCredentials(ssl);
  }
  return credentials;
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  if (options.target.empty()) return absl::InvalidArgumentError("target: required");
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout: must be positive");
  }
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials,
                   ChannelCredentials(options));
  return std::unique_ptr<Client>(new Client(std::move(options), std::move(credentials)));
}

Client::Client(ClientOptions options, std::shared_ptr<grpc::ChannelCredentials> credentials)
    : options_(std::move(options)) {
  grpc::ChannelArguments args;
  // A down PDP must fail fast, not back off for seconds between reconnection attempts.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  channel_ = grpc::CreateCustomChannel(options_.target, credentials, args);
  stub_ = v1::Agate::NewStub(channel_);
}

std::unique_ptr<grpc::ClientContext> Client::NewContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  if (!options_.token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", options_.token));
  }
  return context;
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
  std::unique_ptr<grpc::ClientContext> context = NewContext();
  v1::EvaluateResponse response;
  const absl::Status status = FromGrpcStatus(stub_->Evaluate(context.get(), request, &response));
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
