// Identity: who is calling, and what they may do (docs/security.md).
//
// With an access policy (`--access FILE`, engine/access_policy.h) every call must carry a
// verified principal:
//   - a bearer token (`authorization: Bearer JWT`) from an issuer the policy lists, verified
//     against its JWKS (server/jwt.h). Its subject is an agent if the policy lists it among the
//     agents, an admin if among the admins, otherwise a person with the token's groups;
//   - otherwise, on a Unix socket, the peer's uid (SO_PEERCRED, server/acceptor.h), named
//     "uid:N" among the policy's agents or admins;
//   - otherwise a client certificate (mutual TLS) whose URI SAN (e.g. a SPIFFE ID) the policy
//     lists among the agents.
// No credential, or one that does not verify, is UNAUTHENTICATED; a verified principal that may
// not do what it asks is PERMISSION_DENIED naming the field (MayEvaluate, Approver,
// MayAdminister). Reads see only the caller's tenants (Sees): an agent's, the tenants a person's
// groups operate, every tenant for an admin.
//
// Without one (`--auth none`) the server runs in development mode: callers are not verified,
// Evaluate and reads are open, and an approver is whoever the call claims to be (the
// x-agate-approver metadata or AcknowledgeRequest.approver), member of the group of that name.
//
// Reload re-reads the policy and the JWKS files it names; a bad new policy keeps the old one.
// Thread-safe: every call reads the current policy snapshot.
//
// Example:
//   ASSIGN_OR_RETURN(std::unique_ptr<Identity> identity, Identity::Create("access.yaml", clock));
//   ASSIGN_OR_RETURN(Caller caller, identity->Authenticate(*context));
//   RETURN_IF_ERROR(identity->MayEvaluate(caller, request));
#ifndef AGATE_SERVER_IDENTITY_H_
#define AGATE_SERVER_IDENTITY_H_

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agate/v1/agate.pb.h"
#include "cases/actor.h"
#include "common/clock.h"
#include "common/file_watch.h"
#include "engine/access_policy.h"
#include "grpcpp/server_context.h"
#include "server/jwt.h"

namespace agate::server {

// The metadata a development-mode approver is claimed with.
inline constexpr char kApproverMetadata[] = "x-agate-approver";

// A verified principal, and what the policy says about it. Cheap to copy (shared parts).
struct Caller {
  // What a credential proved, computed once per token or certificate.
  struct Verified {
    v1::Principal principal;
    std::vector<std::string> groups;  // a person's, from the token
  };
  std::shared_ptr<const Verified> verified;
  // The policy the caller was checked against; null in development mode.
  std::shared_ptr<const engine::AccessPolicy> policy;

  const v1::Principal& principal() const { return verified->principal; }
  bool development() const { return policy == nullptr; }
};

class Identity {
 public:
  // Create reads the access policy at access_path and the JWKS files it names (errors name the
  // file: FILE:LINE:COL for the policy). An empty access_path is development mode.
  static absl::StatusOr<std::unique_ptr<Identity>> Create(const std::string& access_path,
                                                          const Clock& clock = RealClock());

  bool development() const { return access_path_.empty(); }
  // Summary describes the policy in force ("3 agents, 2 operator groups, 1 admin, 1 token
  // issuer").
  std::string Summary() const;
  const std::string& access_path() const { return access_path_; }

  // Authenticate returns the call's verified caller, or UNAUTHENTICATED saying what is missing
  // or wrong (never echoing a token).
  absl::StatusOr<Caller> Authenticate(const grpc::CallbackServerContext& context) const;
  // AuthenticateToken verifies a bearer token alone (for tests and benchmarks: no gRPC).
  absl::StatusOr<Caller> AuthenticateToken(absl::string_view token) const;
  // AuthenticateHeader is Authenticate for a call that carries no certificate and no Unix uid
  // (the HTTP API): authorization is its `Authorization` header's value ("" when absent).
  absl::StatusOr<Caller> AuthenticateHeader(absl::string_view authorization) const;

  // MayEvaluate: agents only, for their tenants, as the agent ids they may claim.
  absl::Status MayEvaluate(const Caller& caller, const v1::EvaluateRequest& request) const {
    return MayEvaluate(caller, request.tenant_id(), request.agent_id());
  }
  absl::Status MayEvaluate(const Caller& caller, absl::string_view tenant_id,
                           absl::string_view agent_id) const;
  // Approver returns the actor an Acknowledge acts as: the verified person with their groups'
  // tenants (PERMISSION_DENIED when the request claims someone else), or in development mode the
  // claimed name (INVALID_ARGUMENT when the metadata and the field disagree).
  absl::StatusOr<cases::Actor> Approver(const Caller& caller,
                                        const grpc::CallbackServerContext& context,
                                        const v1::AcknowledgeRequest& request) const;
  // Approver with the x-agate-approver claim given as a value ("" when absent; the HTTP API's
  // X-Agate-Approver header).
  absl::StatusOr<cases::Actor> Approver(const Caller& caller, absl::string_view claimed_approver,
                                        const v1::AcknowledgeRequest& request) const;
  // Sees returns the tenants whose cases the caller may read.
  cases::TenantScope Sees(const Caller& caller) const;
  // MayAdminister: admins (and development mode) only.
  absl::Status MayAdminister(const Caller& caller) const;

  // Reload re-reads the policy file and the JWKS files; a policy with errors keeps the old one
  // and returns INVALID_ARGUMENT with every error. OK in development mode.
  absl::Status Reload() ABSL_LOCKS_EXCLUDED(reload_mu_);
  // Poll reloads once the policy or a JWKS file changed and stayed the same for one poll
  // (--watch); nullopt when it did not reload.
  std::optional<absl::Status> Poll() ABSL_LOCKS_EXCLUDED(reload_mu_);

 private:
  struct Snapshot {
    std::shared_ptr<const engine::AccessPolicy> policy;
    std::shared_ptr<JwtVerifier> verifier;  // null when the policy lists no issuer
  };
  Identity(std::string access_path, const Clock& clock)
      : access_path_(std::move(access_path)), clock_(clock) {}
  static absl::StatusOr<std::shared_ptr<const Snapshot>> Load(const std::string& path,
                                                              const Clock& clock);
  std::shared_ptr<const Snapshot> snapshot() const {
    return snapshot_.load(std::memory_order_acquire);
  }
  absl::StatusOr<Caller> FromUid(const Snapshot& snapshot, uid_t uid) const;
  absl::StatusOr<Caller> FromCertificate(const Snapshot& snapshot,
                                         const grpc::CallbackServerContext& context) const;

  const std::string access_path_;
  const Clock& clock_;
  std::atomic<std::shared_ptr<const Snapshot>> snapshot_;
  absl::Status ReloadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(reload_mu_);

  absl::Mutex reload_mu_;
  std::optional<FileWatch> watch_ ABSL_GUARDED_BY(reload_mu_);  // the policy and its JWKS files
  // Token principals by the verifier's cached VerifiedToken (alive while the verifier caches it):
  // a repeated token costs two lookups and no allocation.
  struct TokenEntry {
    std::weak_ptr<const VerifiedToken> token;
    std::shared_ptr<const Caller::Verified> verified;
  };
  mutable absl::Mutex token_mu_;
  mutable absl::flat_hash_map<const VerifiedToken*, TokenEntry> tokens_ ABSL_GUARDED_BY(token_mu_);
  // Certificate principals by the certificate's PEM (a connection presents the same one on every
  // call): the SHA-256 and policy lookup are done once per certificate.
  mutable absl::Mutex cert_mu_;
  mutable absl::flat_hash_map<std::string, std::shared_ptr<const Caller::Verified>> certs_
      ABSL_GUARDED_BY(cert_mu_);
};

}  // namespace agate::server

#endif  // AGATE_SERVER_IDENTITY_H_
