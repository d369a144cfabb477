// Client: agate's C++ client library, failing closed as Envoy's ext_authz does.
//
// Every call carries a deadline (ClientOptions::timeout) and does not wait for a server that is
// not ready. When agate does not answer — UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED,
// INTERNAL, UNKNOWN, CANCELLED, ABORTED, UNIMPLEMENTED, DATA_LOSS — Evaluate returns OK with a
// synthetic decision: HOLD with failed_closed = true (default), or ALLOW with failed_open = true
// when failure_mode is kFailOpen; `reason` says what happened. When agate answers that the
// request itself is wrong (INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, FAILED_PRECONDITION,
// ALREADY_EXISTS, OUT_OF_RANGE, UNAUTHENTICATED) Evaluate returns that status: a caller's bug is
// never masked as a verdict.
//
// Thread-safe; one Client per target is enough (it multiplexes over one channel).
//
// Example:
//   absl::StatusOr<std::unique_ptr<Client>> c = Client::Create({.target = "unix:/run/agate.sock"});
//   absl::StatusOr<v1::EvaluateResponse> r = (*c)->Evaluate(request);
//   if (!r.ok()) return r.status();                       // our request was malformed
//   if (r->verdict() != v1::VERDICT_ALLOW) { /* hold, park, ... as r->agent_action() says */ }
#ifndef AGATE_CLIENT_CLIENT_H_
#define AGATE_CLIENT_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agate/v1/agate.grpc.pb.h"
#include "grpcpp/security/credentials.h"

namespace agate::client {

enum class FailureMode { kFailClosed, kFailOpen };

struct ClientOptions {
  std::string target;                                // "host:port" or "unix:/path"
  absl::Duration timeout = absl::Milliseconds(200);  // per-call deadline
  FailureMode failure_mode = FailureMode::kFailClosed;
  // TLS: the CAs that sign the server's certificate (PEM file); with tls_cert and tls_key, the
  // client certificate of mutual TLS. Empty: plaintext (loopback and Unix sockets).
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  // A bearer token sent as `authorization: Bearer <token>` on every call. Refused over plaintext
  // to anything but loopback or a Unix socket (it would travel in the clear).
  std::string token;
};

struct ClientCounters {
  uint64_t ok = 0;             // answers (any verdict)
  uint64_t escalated = 0;      // answers whose verdict is not ALLOW
  uint64_t error = 0;          // the request was refused (returned as an error)
  uint64_t failed_closed = 0;  // no answer: synthetic HOLD
  uint64_t failed_open = 0;    // no answer: synthetic ALLOW
};

// ChannelCredentials returns the credentials options ask for: TLS (or mutual TLS) from the PEM
// files, else plaintext. The errors of Client::Create for the TLS files and the token.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(
    const ClientOptions& options);

class Client {
 public:
  // Create checks options: INVALID_ARGUMENT for an empty target, a non-positive timeout, a token
  // over plaintext to a non-loopback target, tls_cert without tls_key; NOT_FOUND (or the errno's
  // status) for a TLS file that cannot be read.
  static absl::StatusOr<std::unique_ptr<Client>> Create(ClientOptions options);

  // NewContext returns a context for one call with the deadline and the token set (for the
  // other RPCs through stub()).
  std::unique_ptr<grpc::ClientContext> NewContext() const;

  absl::StatusOr<v1::EvaluateResponse> Evaluate(const v1::EvaluateRequest& request);

  // Health asks the server's grpc.health.v1.Health/Check whether service ("" : the server as a
  // whole) is SERVING, within the timeout: OK if it is, UNAVAILABLE "... is NOT_SERVING" if it
  // says otherwise, or the call's error (UNAVAILABLE when nothing answers). Liveness probes create
  // a Client per probe, so each probe opens a fresh connection: a listener that stopped
  // accepting fails it even while old connections still work.
  absl::Status Health(absl::string_view service = "agate.v1.Agate");

  // IsNoAnswer tells whether a status means the PDP did not decide (fail mode applies).
  static bool IsNoAnswer(const absl::Status& status);

  ClientCounters counters() const;
  // stub gives the other RPCs (Acknowledge, GetCase, ...), each with a NewContext().
  v1::Agate::Stub& stub() { return *stub_; }
  const ClientOptions& options() const { return options_; }

 private:
  Client(ClientOptions options, std::shared_ptr<grpc::ChannelCredentials> credentials);

  const ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Agate::Stub> stub_;
  std::atomic<uint64_t> ok_{0}, escalated_{0}, error_{0}, failed_closed_{0}, failed_open_{0};
};

}  // namespace agate::client

#endif  // AGATE_CLIENT_CLIENT_H_
