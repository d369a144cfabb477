// AccessPolicy: who may do what (`agate-server --access FILE`), loaded from YAML like the matrix
// and checked by `agate check`.
//
//   version: 1
//   issuers:                          # who signs people's (and optionally agents') tokens
//     - issuer: https://idp.example.com
//       audience: agate
//       jwks: jwks.json               # relative to this file; re-read when it changes
//       groups_claim: groups          # the claim that lists a person's groups (default groups)
//   agents:                           # by mTLS URI SAN, token subject, or uid:N on a Unix socket
//     - principal: spiffe://example.org/agent/support-bot
//       tenants: [acme]
//       agent_ids: [support-bot]      # the agent_id values it may send; empty = any
//   operators:                        # people: a group of the groups claim, and its tenants
//     - group: finance-approver
//       tenants: [acme]
//   admins:
//     - subject: alice@example.com    # a token subject
//
// A matrix's owner, backup and fallback name groups. Every problem is a Diagnostic at its
// FILE:LINE:COL (unknown keys with "did you mean", duplicates, empty lists, a JWKS path that is
// not a file name, a principal listed twice); warnings for what is legal but likely wrong (people
// listed but no issuer to sign their tokens).
//
// An AccessPolicy is immutable, shared as std::shared_ptr<const AccessPolicy>; a reload builds a
// new one. Thread-safe.
//
// Example:
//   std::vector<Diagnostic> diagnostics;
//   absl::StatusOr<std::shared_ptr<const AccessPolicy>> p =
//       LoadAccessPolicyFile("access.yaml", &diagnostics);
//   if (p.ok() && (*p)->FindAgent("spiffe://example.org/agent/support-bot")) ...
#ifndef AGATE_ENGINE_ACCESS_POLICY_H_
#define AGATE_ENGINE_ACCESS_POLICY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/diagnostic.h"

namespace agate::engine {

class AccessPolicy {
 public:
  struct Issuer {
    std::string issuer;
    std::string audience;
    std::string jwks_path;  // resolved against the policy file's directory
    std::string groups_claim = "groups";
  };
  struct Agent {
    std::string principal;
    std::vector<std::string> tenants;
    std::vector<std::string> agent_ids;  // empty: any
    bool MayAct(absl::string_view tenant) const;
    bool MayClaim(absl::string_view agent_id) const;
  };
  struct Operator {
    std::string group;
    std::vector<std::string> tenants;
  };

  AccessPolicy(std::string file, std::vector<Issuer> issuers, std::vector<Agent> agents,
               std::vector<Operator> operators, std::vector<std::string> admins);

  const std::string& file() const { return file_; }
  const std::vector<Issuer>& issuers() const { return issuers_; }
  const std::vector<Agent>& agents() const { return agents_; }
  const std::vector<Operator>& operators() const { return operators_; }

  // FindAgent returns the agent listed with principal, or null.
  const Agent* FindAgent(absl::string_view principal) const;
  // IsAdmin tells whether a token subject is an admin.
  bool IsAdmin(absl::string_view subject) const { return admins_.contains(subject); }
  size_t admin_count() const { return admins_.size(); }
  // TenantsOperatedBy returns the tenants any of groups operates (sorted, distinct).
  std::vector<std::string> TenantsOperatedBy(const std::vector<std::string>& groups) const;
  // Operates tells whether group operates tenant.
  bool Operates(absl::string_view group, absl::string_view tenant) const;

 private:
  std::string file_;
  std::vector<Issuer> issuers_;
  std::vector<Agent> agents_;
  std::vector<Operator> operators_;
  absl::flat_hash_map<std::string, size_t> agent_by_principal_;
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> tenants_by_group_;
  absl::flat_hash_set<std::string> admins_;
};

// ParseAccessPolicy reads YAML text; file_name is used in diagnostics and to resolve relative
// JWKS paths. Appends every error and warning to *diagnostics (if not null). INVALID_ARGUMENT with
// every error, one per line, if there is any.
absl::StatusOr<std::shared_ptr<const AccessPolicy>> ParseAccessPolicy(
    absl::string_view yaml, absl::string_view file_name, std::vector<Diagnostic>* diagnostics);

// LoadAccessPolicyFile reads path and calls ParseAccessPolicy. A file that cannot be read is
// NOT_FOUND (or the errno's status).
absl::StatusOr<std::shared_ptr<const AccessPolicy>> LoadAccessPolicyFile(
    const std::string& path, std::vector<Diagnostic>* diagnostics);

// LooksLikeAccessPolicy tells `agate check` which kind of file it reads: a mapping with any of
// issuers, agents, operators, admins and no lanes.
bool LooksLikeAccessPolicy(absl::string_view yaml);

}  // namespace agate::engine

#endif  // AGATE_ENGINE_ACCESS_POLICY_H_
