#include "server/identity.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "grpc/grpc_security_constants.h"
#include "grpcpp/security/auth_context.h"
#include "server/acceptor.h"
#include "spdlog/spdlog.h"

namespace agate::server {
namespace {

// Principals remembered per certificate or token at most (then forgotten all at once).
constexpr size_t kMaxCertificates = 10'000;

absl::Status Unauthenticated(absl::string_view why) { return absl::UnauthenticatedError(why); }

// BearerToken returns the token of an `authorization: Bearer ...` value ("" stays "").
absl::string_view BearerToken(absl::string_view value) {
  if (value.size() > 7 && absl::EqualsIgnoreCase(value.substr(0, 7), "bearer ")) {
    return absl::StripAsciiWhitespace(value.substr(7));
  }
  return value;  // not a bearer token: Verify says what is wrong with it
}

// BearerToken returns the token of an `authorization: Bearer ...` metadata entry, "" if none.
absl::string_view BearerToken(const grpc::CallbackServerContext& context) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return "";
  return BearerToken(absl::string_view(it->second.data(), it->second.size()));
}

// DevelopmentCaller is every caller in development mode.
Caller DevelopmentCaller() {
  static const std::shared_ptr<const Caller::Verified> kDevelopment = [] {
    auto v = std::make_shared<Caller::Verified>();
    v->principal.set_subject("(unverified)");
    v->principal.set_kind(v1::PRINCIPAL_KIND_UNVERIFIED);
    return v;
  }();
  return Caller{kDevelopment, nullptr};
}

// PropertyOf returns the first value of an auth context property, "" if none.
std::string PropertyOf(const grpc::AuthContext& auth, const char* name) {
  std::vector<grpc::string_ref> values = auth.FindPropertyValues(name);
  if (values.empty()) return "";
  return std::string(values.front().data(), values.front().size());
}

// CertificateSha256 returns the hex SHA-256 of a PEM certificate's DER, "" if it does not parse.
std::string CertificateSha256(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return "";
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) return "";
  unsigned char* der = nullptr;
  const int size = i2d_X509(cert, &der);
  X509_free(cert);
  if (size <= 0) return "";
  std::string hex;
  ThreadSha256().HexAppend(absl::string_view(reinterpret_cast<char*>(der), size), &hex);
  OPENSSL_free(der);
  return hex;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Identity>> Identity::Create(const std::string& access_path,
                                                           const Clock& clock) {
  std::unique_ptr<Identity> identity(new Identity(access_path, clock));
  if (access_path.empty()) return identity;
  ASSIGN_OR_RETURN(std::shared_ptr<const Snapshot> snapshot, Load(access_path, clock));
  identity->snapshot_.store(std::move(snapshot));
  return identity;
}

absl::StatusOr<std::shared_ptr<const Identity::Snapshot>> Identity::Load(const std::string& path,
                                                                         const Clock& clock) {
  std::vector<engine::Diagnostic> diagnostics;
  absl::StatusOr<std::shared_ptr<const engine::AccessPolicy>> policy =
      engine::LoadAccessPolicyFile(path, &diagnostics);
  if (!policy.ok()) return policy.status();
  auto snapshot = std::make_shared<Snapshot>();
  snapshot->policy = *policy;
  if (!(*policy)->issuers().empty()) {
    std::vector<JwtIssuer> issuers;
    for (const engine::AccessPolicy::Issuer& i : (*policy)->issuers()) {
      issuers.push_back(JwtIssuer{.issuer = i.issuer,
                                  .audience = i.audience,
                                  .jwks_path = i.jwks_path,
                                  .groups_claim = i.groups_claim});
    }
    ASSIGN_OR_RETURN(std::unique_ptr<JwtVerifier> verifier,
                     JwtVerifier::Create(std::move(issuers), clock));
    snapshot->verifier = std::move(verifier);
  }
  return std::shared_ptr<const Snapshot>(std::move(snapshot));
}

namespace {

std::vector<std::string> WatchedFiles(const std::string& path, const engine::AccessPolicy* policy) {
  std::vector<std::string> files = {path};
  if (policy != nullptr) {
    for (const engine::AccessPolicy::Issuer& i : policy->issuers()) files.push_back(i.jwks_path);
  }
  return files;
}

}  // namespace

std::string Identity::Summary() const {
  std::shared_ptr<const Snapshot> s = snapshot();
  if (s == nullptr) return "development mode";
  const engine::AccessPolicy& p = *s->policy;
  auto n = [](size_t count, absl::string_view what) {
    return absl::StrCat(count, " ", what, count == 1 ? "" : "s");
  };
  return absl::StrCat(n(p.agents().size(), "agent"), ", ",
                      n(p.operators().size(), "operator group"), ", ", n(p.admin_count(), "admin"),
                      ", ", n(p.issuers().size(), "token issuer"));
}

absl::Status Identity::ReloadLocked() {
  absl::StatusOr<std::shared_ptr<const Snapshot>> fresh = Load(access_path_, clock_);
  if (!fresh.ok()) {
    spdlog::error("access policy reload failed, the previous policy still applies: {}",
                  std::string(fresh.status().message()));
    return fresh.status();
  }
  watch_.emplace(WatchedFiles(access_path_, (*fresh)->policy.get()));
  snapshot_.store(*std::move(fresh), std::memory_order_release);
  {
    absl::MutexLock cert_lock(&cert_mu_);
    certs_.clear();  // roles may have changed
  }
  {
    absl::MutexLock token_lock(&token_mu_);
    tokens_.clear();
  }
  spdlog::info("reloaded access policy {}", access_path_);
  return absl::OkStatus();
}

absl::Status Identity::Reload() {
  if (development()) return absl::OkStatus();
  absl::MutexLock lock(&reload_mu_);
  return ReloadLocked();
}

std::optional<absl::Status> Identity::Poll() {
  if (development()) return std::nullopt;
  absl::MutexLock lock(&reload_mu_);
  if (!watch_.has_value()) watch_.emplace(WatchedFiles(access_path_, snapshot()->policy.get()));
  if (!watch_->Settled()) return std::nullopt;
  watch_->Loaded();
  return ReloadLocked();
}

absl::StatusOr<Caller> Identity::AuthenticateToken(absl::string_view token) const {
  std::shared_ptr<const Snapshot> s = snapshot();
  if (s == nullptr) return Unauthenticated("no access policy");
  if (s->verifier == nullptr) {
    return Unauthenticated("bearer tokens are not accepted: the access policy lists no issuer");
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const VerifiedToken> verified, s->verifier->Verify(token));
  {
    absl::MutexLock lock(&token_mu_);
    auto it = tokens_.find(verified.get());
    if (it != tokens_.end() && it->second.token.lock() == verified) {
      return Caller{it->second.verified, s->policy};
    }
  }
  auto out = std::make_shared<Caller::Verified>();
  v1::Principal& p = out->principal;
  p.set_subject(verified->subject);
  p.set_issuer(verified->issuer);
  p.set_token_id(verified->token_id);
  if (s->policy->FindAgent(verified->subject) != nullptr) {
    p.set_kind(v1::PRINCIPAL_KIND_AGENT);
  } else if (s->policy->IsAdmin(verified->subject)) {
    p.set_kind(v1::PRINCIPAL_KIND_ADMIN);
  } else {
    p.set_kind(v1::PRINCIPAL_KIND_PERSON);
  }
  out->groups = verified->groups;
  absl::MutexLock lock(&token_mu_);
  if (tokens_.size() >= kMaxCertificates) tokens_.clear();  // the verifier's own bound is lower
  tokens_[verified.get()] = TokenEntry{verified, out};
  return Caller{std::move(out), s->policy};
}

absl::StatusOr<Caller> Identity::FromUid(const Snapshot& snapshot, uid_t uid) const {
  const std::string subject = absl::StrCat("uid:", uid);
  v1::PrincipalKind kind;
  if (snapshot.policy->FindAgent(subject) != nullptr) {
    kind = v1::PRINCIPAL_KIND_AGENT;
  } else if (snapshot.policy->IsAdmin(subject)) {
    kind = v1::PRINCIPAL_KIND_ADMIN;
  } else {
    return Unauthenticated(absl::StrCat("the Unix-socket peer ", subject,
                                        " is not in the access policy ", snapshot.policy->file(),
                                        "; list it among the agents, or send a bearer token"));
  }
  auto verified = std::make_shared<Caller::Verified>();
  verified->principal.set_subject(subject);
  verified->principal.set_kind(kind);
  return Caller{std::move(verified), snapshot.policy};
}

absl::StatusOr<Caller> Identity::FromCertificate(const Snapshot& snapshot,
                                                 const grpc::CallbackServerContext& context) const {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) {
    return Unauthenticated(
        "no credential: present a client certificate (mutual TLS) or an `authorization: Bearer "
        "<token>` metadata entry");
  }
  const std::string pem = PropertyOf(*auth, GRPC_X509_PEM_CERT_PROPERTY_NAME);
  {
    absl::MutexLock lock(&cert_mu_);
    if (auto it = certs_.find(pem); it != certs_.end()) {
      return Caller{it->second, snapshot.policy};
    }
  }
  std::string uri = PropertyOf(*auth, GRPC_PEER_SPIFFE_ID_PROPERTY_NAME);
  if (uri.empty()) uri = PropertyOf(*auth, GRPC_PEER_URI_PROPERTY_NAME);
  if (uri.empty()) {
    return Unauthenticated("the client certificate has no URI SAN to name an agent by");
  }
  if (snapshot.policy->FindAgent(uri) == nullptr) {
    return Unauthenticated(absl::StrCat("the client certificate's principal ", uri,
                                        " is not an agent of the access policy ",
                                        snapshot.policy->file()));
  }
  auto verified = std::make_shared<Caller::Verified>();
  verified->principal.set_subject(uri);
  verified->principal.set_certificate_sha256(CertificateSha256(pem));
  verified->principal.set_kind(v1::PRINCIPAL_KIND_AGENT);
  absl::MutexLock lock(&cert_mu_);
  if (certs_.size() >= kMaxCertificates) certs_.clear();
  certs_[pem] = verified;
  return Caller{std::move(verified), snapshot.policy};
}

absl::StatusOr<Caller> Identity::Authenticate(const grpc::CallbackServerContext& context) const {
  if (development()) return DevelopmentCaller();
  std::shared_ptr<const Snapshot> s = snapshot();
  if (absl::string_view token = BearerToken(context); !token.empty()) {
    return AuthenticateToken(token);
  }
  if (std::optional<uid_t> uid = Acceptor::PeerUid(context.peer())) return FromUid(*s, *uid);
  return FromCertificate(*s, context);
}

absl::StatusOr<Caller> Identity::AuthenticateHeader(absl::string_view authorization) const {
  if (development()) return DevelopmentCaller();
  if (absl::string_view token = BearerToken(authorization); !token.empty()) {
    return AuthenticateToken(token);
  }
  return Unauthenticated("no credential: send an `Authorization: Bearer <token>` header");
}

absl::Status Identity::MayEvaluate(const Caller& caller, absl::string_view tenant_id,
                                   absl::string_view agent_id) const {
  if (caller.development()) return absl::OkStatus();
  const v1::Principal& p = caller.principal();
  const engine::AccessPolicy::Agent* agent = caller.policy->FindAgent(p.subject());
  if (p.kind() != v1::PRINCIPAL_KIND_AGENT || agent == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat(p.subject(), " is not an agent: only agents call Evaluate"));
  }
  if (!agent->MayAct(tenant_id)) {
    return absl::PermissionDeniedError(
        absl::StrCat("tenant_id: agent ", p.subject(), " may not act for tenant '", tenant_id,
                     "' (its tenants: ", absl::StrJoin(agent->tenants, ", "), ")"));
  }
  if (!agent->MayClaim(agent_id)) {
    return absl::PermissionDeniedError(absl::StrCat("agent_id: ", p.subject(), " may act as ",
                                                    absl::StrJoin(agent->agent_ids, ", "),
                                                    ", not '", agent_id, "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<cases::Actor> Identity::Approver(const Caller& caller,
                                                const grpc::CallbackServerContext& context,
                                                const v1::AcknowledgeRequest& request) const {
  const auto& metadata = context.client_metadata();
  auto claimed = metadata.find(kApproverMetadata);
  return Approver(caller,
                  claimed == metadata.end()
                      ? absl::string_view()
                      : absl::string_view(claimed->second.data(), claimed->second.size()),
                  request);
}

absl::StatusOr<cases::Actor> Identity::Approver(const Caller& caller,
                                                absl::string_view claimed_approver,
                                                const v1::AcknowledgeRequest& request) const {
  const std::string from_metadata(claimed_approver);
  if (caller.development()) {
    if (!from_metadata.empty() && !request.approver().empty() &&
        request.approver() != from_metadata) {
      return absl::InvalidArgumentError(absl::StrCat("approver: '", request.approver(),
                                                     "' differs from the ", kApproverMetadata,
                                                     " metadata '", from_metadata, "'"));
    }
    return cases::Actor::Unverified(from_metadata.empty() ? request.approver() : from_metadata);
  }
  const v1::Principal& p = caller.principal();
  for (const std::string* claim : {&request.approver(), &from_metadata}) {
    if (!claim->empty() && *claim != p.subject()) {
      return absl::PermissionDeniedError(absl::StrCat("approver: the verified caller is ",
                                                      p.subject(), "; the request claims '", *claim,
                                                      "' (the approver is always the caller)"));
    }
  }
  cases::Actor actor;
  actor.principal = p;
  for (const std::string& group : caller.verified->groups) {
    std::vector<std::string> tenants = caller.policy->TenantsOperatedBy({group});
    if (!tenants.empty()) actor.groups[group] = std::move(tenants);
  }
  actor.sees = Sees(caller);
  return actor;
}

cases::TenantScope Identity::Sees(const Caller& caller) const {
  if (caller.development() || caller.principal().kind() == v1::PRINCIPAL_KIND_ADMIN) {
    return cases::TenantScope::All();
  }
  if (caller.principal().kind() == v1::PRINCIPAL_KIND_AGENT) {
    const engine::AccessPolicy::Agent* agent =
        caller.policy->FindAgent(caller.principal().subject());
    return cases::TenantScope::Only(agent == nullptr ? std::vector<std::string>{} : agent->tenants);
  }
  return cases::TenantScope::Only(caller.policy->TenantsOperatedBy(caller.verified->groups));
}

absl::Status Identity::MayAdminister(const Caller& caller) const {
  if (caller.development() || caller.principal().kind() == v1::PRINCIPAL_KIND_ADMIN) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat(
      caller.principal().subject(), " is not an admin: only admins set kill switches"));
}

}  // namespace agate::server
