#include "cases/scopes_in_force.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace agate::cases {
namespace {

constexpr absl::string_view kSep("\0", 1);

// KeyView builds a key into a per-thread buffer (no allocation once warm): for lookups.
absl::string_view KeyView(absl::string_view a, absl::string_view b) {
  thread_local std::string key;
  key.clear();
  key.append(a.data(), a.size());
  key.push_back('\0');
  key.append(b.data(), b.size());
  return key;
}

}  // namespace

std::string ScopesInForce::WorkflowKey(absl::string_view tenant, absl::string_view workflow) {
  return absl::StrCat(tenant, kSep, workflow);
}

std::string ScopesInForce::CredentialKey(absl::string_view tenant, absl::string_view credential) {
  return absl::StrCat(tenant, kSep, credential);
}

std::optional<ScopesInForce::Match> ScopesInForce::Find(const engine::Request& request) const {
  absl::ReaderMutexLock lock(&mu_);
  auto first = [&](Kind kind, absl::string_view key) -> std::optional<Match> {
    auto it = keys_[kind].find(key);
    if (it == keys_[kind].end() || it->second.empty()) return std::nullopt;
    static constexpr engine::Verdict kVerdicts[] = {v1::VERDICT_SAFE_MODE, v1::VERDICT_HOLD,
                                                    v1::VERDICT_DENY};
    return Match{it->second.front(), kind, kVerdicts[kind]};
  };
  if (!request.actor().credential_id().empty()) {
    if (auto m = first(kDisabled, KeyView(request.tenant_id(), request.actor().credential_id()))) {
      return m;
    }
  }
  const absl::string_view workflow = KeyView(request.tenant_id(), request.workflow_id());
  if (!request.action().critical()) {
    if (auto m = first(kSafeMode, workflow)) return m;
  }
  return first(kPaused, workflow);
}

void ScopesInForce::Set(Kind kind, const std::string& key, uint64_t case_seq, bool on) {
  absl::MutexLock lock(&mu_);
  std::vector<uint64_t>& seqs = keys_[kind][key];
  if (on) {
    seqs.push_back(case_seq);
    count_.fetch_add(1, std::memory_order_release);
  } else {
    seqs.erase(std::remove(seqs.begin(), seqs.end(), case_seq), seqs.end());
    if (seqs.empty()) keys_[kind].erase(key);
    count_.fetch_sub(1, std::memory_order_release);
  }
}

}  // namespace agate::cases
