#include "cases/scopes_in_force.h"

#include <algorithm>
#include <initializer_list>

#include "absl/strings/str_cat.h"

namespace agate::cases {
namespace {

constexpr absl::string_view kSep("\0", 1);

// KeyView builds a key of NUL-separated parts into a per-thread buffer (no allocation once
// warm): for lookups.
absl::string_view KeyView(std::initializer_list<absl::string_view> parts) {
  thread_local std::string key;
  key.clear();
  bool first = true;
  for (absl::string_view part : parts) {
    if (!first) key.push_back('\0');
    key.append(part.data(), part.size());
    first = false;
  }
  return key;
}

// KillPrefix is the first part of a kill switch's key.
absl::string_view KillPrefix(v1::KillScope scope) {
  switch (scope) {
    case v1::KILL_SCOPE_TENANT:
      return "T";
    case v1::KILL_SCOPE_AGENT:
      return "A";
    case v1::KILL_SCOPE_WORKFLOW:
      return "W";
    case v1::KILL_SCOPE_CREDENTIAL:
      return "C";
    default:
      return "?";
  }
}

}  // namespace

std::string ScopesInForce::WorkflowKey(absl::string_view tenant, absl::string_view workflow) {
  return absl::StrCat(tenant, kSep, workflow);
}

std::string ScopesInForce::CredentialKey(absl::string_view tenant, absl::string_view credential) {
  return absl::StrCat(tenant, kSep, credential);
}

std::string ScopesInForce::KillKey(v1::KillScope scope, absl::string_view tenant,
                                   absl::string_view value) {
  if (scope == v1::KILL_SCOPE_TENANT) return absl::StrCat(KillPrefix(scope), kSep, tenant);
  return absl::StrCat(KillPrefix(scope), kSep, tenant, kSep, value);
}

std::optional<ScopesInForce::Match> ScopesInForce::Find(const engine::Request& request) const {
  absl::ReaderMutexLock lock(&mu_);
  auto first = [&](Kind kind, absl::string_view key) -> std::optional<Match> {
    auto it = keys_[kind].find(key);
    if (it == keys_[kind].end() || it->second.empty()) return std::nullopt;
    static constexpr engine::Verdict kVerdicts[] = {v1::VERDICT_SAFE_MODE, v1::VERDICT_HOLD,
                                                    v1::VERDICT_DENY, v1::VERDICT_DENY};
    return Match{it->second.front(), kind, kVerdicts[kind]};
  };
  const absl::string_view tenant = request.tenant_id();
  if (!keys_[kKilled].empty()) {
    const struct {
      v1::KillScope scope;
      absl::string_view value;
    } kills[] = {{v1::KILL_SCOPE_TENANT, ""},
                 {v1::KILL_SCOPE_AGENT, request.agent_id()},
                 {v1::KILL_SCOPE_WORKFLOW, request.workflow_id()},
                 {v1::KILL_SCOPE_CREDENTIAL, request.actor().credential_id()}};
    for (const auto& k : kills) {
      if (k.scope != v1::KILL_SCOPE_TENANT && k.value.empty()) continue;
      const absl::string_view key = k.scope == v1::KILL_SCOPE_TENANT
                                        ? KeyView({KillPrefix(k.scope), tenant})
                                        : KeyView({KillPrefix(k.scope), tenant, k.value});
      if (auto m = first(kKilled, key)) return m;
    }
  }
  if (!request.actor().credential_id().empty()) {
    if (auto m = first(kDisabled, KeyView({tenant, request.actor().credential_id()}))) {
      return m;
    }
  }
  const absl::string_view workflow = KeyView({tenant, request.workflow_id()});
  if (!request.action().critical()) {
    if (auto m = first(kSafeMode, workflow)) return m;
  }
  return first(kPaused, workflow);
}

void ScopesInForce::Set(Kind kind, const std::string& key, uint64_t id, bool on) {
  absl::MutexLock lock(&mu_);
  std::vector<uint64_t>& seqs = keys_[kind][key];
  if (on) {
    seqs.push_back(id);
    count_.fetch_add(1, std::memory_order_release);
  } else {
    seqs.erase(std::remove(seqs.begin(), seqs.end(), id), seqs.end());
    if (seqs.empty()) keys_[kind].erase(key);
    count_.fetch_sub(1, std::memory_order_release);
  }
}

}  // namespace agate::cases
