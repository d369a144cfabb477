// Actor and TenantScope: who acts on cases and which tenants' cases they may see, as the case
// store needs to know it. The server builds them from the verified caller and the access policy
// (server/identity.h); in development mode (--auth none) an actor is the name the call claims,
// member of the group of that name, for every tenant.
//
// Plain values; thread-compatible.
#ifndef AGATE_CASES_ACTOR_H_
#define AGATE_CASES_ACTOR_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "agate/v1/agate.pb.h"

namespace agate::cases {

// The tenants whose cases a caller may see: every one, or a set.
class TenantScope {
 public:
  // All is every tenant (admins, development mode).
  static TenantScope All() { return TenantScope(); }
  // Only is the given tenants (none: nothing is visible).
  static TenantScope Only(const std::vector<std::string>& tenants) {
    TenantScope scope;
    scope.all_ = false;
    scope.tenants_.insert(tenants.begin(), tenants.end());
    return scope;
  }
  bool all() const { return all_; }
  bool Contains(absl::string_view tenant) const { return all_ || tenants_.contains(tenant); }

 private:
  TenantScope() = default;
  bool all_ = true;
  absl::flat_hash_set<std::string> tenants_;
};

// Who acknowledges a case (or votes toward one).
struct Actor {
  // As verified; principal.subject is the name the history shows.
  v1::Principal principal;
  // The groups the actor is a member of, each with the tenants it operates there ("*": every
  // tenant, in development mode).
  absl::flat_hash_map<std::string, std::vector<std::string>> groups;
  // The cases it may see; another tenant's case is NOT_FOUND to it.
  TenantScope sees = TenantScope::All();

  // ActsFor tells whether the actor is a member of group for tenant.
  bool ActsFor(absl::string_view group, absl::string_view tenant) const {
    auto it = groups.find(group);
    if (it == groups.end()) return false;
    for (const std::string& t : it->second) {
      if (t == "*" || t == tenant) return true;
    }
    return false;
  }

  // Unverified is the development-mode actor: name, of the group name, for every tenant.
  static Actor Unverified(const std::string& name) {
    Actor actor;
    actor.principal.set_subject(name);
    actor.principal.set_kind(v1::PRINCIPAL_KIND_UNVERIFIED);
    actor.groups[name] = {"*"};
    return actor;
  }
};

}  // namespace agate::cases

#endif  // AGATE_CASES_ACTOR_H_
