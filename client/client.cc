#include "client/client.h"

#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/grpc_status.h"
#include "common/status_macros.h"
#include "grpcpp/generic/generic_stub.h"
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

absl::Status Client::Health(absl::string_view service) {
  // grpc.health.v1 is not generated for C++ here (Debian ships no health.proto): its two messages
  // are written by hand. HealthCheckRequest{string service = 1}; HealthCheckResponse{enum status
  // = 1}, SERVING = 1.
  if (service.size() > 127) return absl::InvalidArgumentError("service: longer than 127 bytes");
  std::string request;
  if (!service.empty()) {
    request = absl::StrCat("\x0a", std::string(1, static_cast<char>(service.size())), service);
  }
  grpc::GenericStub stub(channel_);
  grpc::CompletionQueue cq;
  std::unique_ptr<grpc::ClientContext> context = NewContext();
  grpc::Slice slice(request);
  grpc::ByteBuffer in(&slice, 1), out;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> call =
      stub.PrepareUnaryCall(context.get(), "/grpc.health.v1.Health/Check", in, &cq);
  call->StartCall();
  grpc::Status status;
  call->Finish(&out, &status, nullptr);
  void* tag = nullptr;
  bool ok = false;
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (!status.ok()) return FromGrpcStatus(status);
  std::vector<grpc::Slice> slices;
  std::string answer;
  if (out.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) {
      answer.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  if (answer == absl::string_view("\x08\x01", 2)) return absl::OkStatus();
  const int code = answer.size() == 2 && answer[0] == '\x08' ? answer[1] : 0;
  static constexpr const char* kNames[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
  return absl::UnavailableError(
      absl::StrCat(service.empty() ? "the server" : service, " is ",
                   code >= 0 && code < 4 ? kNames[code] : absl::StrCat("status ", code)));
}

ClientCounters Client::counters() const {
  return ClientCounters{ok_.load(), escalated_.load(), error_.load(), failed_closed_.load(),
                        failed_open_.load()};
}

}  // namespace agate::client
