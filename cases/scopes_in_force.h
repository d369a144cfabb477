// ScopesInForce: what open cases impose on later requests until they are acknowledged.
//
//   kSafeMode  an OPEN SAFE_MODE case: non-critical actions of its workflow get SAFE_MODE;
//   kPaused    a case that timed out with pause_workflow: every action of its workflow gets HOLD;
//   kDisabled  a case that timed out with disable_credential: every action with its credential
//              gets DENY;
//   kKilled    an admin's kill switch: every action of a tenant, or of one agent, workflow or
//              credential of a tenant, gets DENY.
// Keys are built by the static functions below (NUL-separated ids). Several cases may put the
// same key in force; the oldest answers. A Match's id is the case's seq, or the kill switch's id.
//
// Thread-safe. Writers (the case store, under its own lock) take a writer lock; Find takes a
// reader lock, and empty() is one atomic load, so the ALLOW path pays nothing while no scope is in
// force anywhere.
#ifndef AGATE_CASES_SCOPES_IN_FORCE_H_
#define AGATE_CASES_SCOPES_IN_FORCE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "engine/request.h"
#include "engine/verdict.h"

namespace agate::cases {

class ScopesInForce {
 public:
  enum Kind { kSafeMode = 0, kPaused = 1, kDisabled = 2, kKilled = 3 };
  static constexpr int kKinds = 4;
  // The kinds a case can put in force (kKilled is an admin's, not a case's).
  static constexpr int kCaseKinds = 3;

  // The scope that applies to a request: what imposes it and the verdict it imposes.
  struct Match {
    uint64_t id = 0;
    Kind kind = kSafeMode;
    engine::Verdict verdict = v1::VERDICT_UNSPECIFIED;
  };

  // WorkflowKey and CredentialKey build the keys a case puts in force.
  static std::string WorkflowKey(absl::string_view tenant, absl::string_view workflow);
  static std::string CredentialKey(absl::string_view tenant, absl::string_view credential);
  // KillKey builds a kill switch's key: scope, tenant and (but for a tenant) the agent,
  // workflow or credential id.
  static std::string KillKey(v1::KillScope scope, absl::string_view tenant,
                             absl::string_view value);

  // empty tells whether no scope is in force anywhere (an atomic load).
  bool empty() const { return count_.load(std::memory_order_acquire) == 0; }
  // Find returns the most restrictive scope that applies to request: a kill switch of its tenant,
  // agent, workflow or credential (DENY), a disabled credential (DENY), then safe mode for a
  // non-critical action (SAFE_MODE), then a paused workflow (HOLD).
  std::optional<Match> Find(const engine::Request& request) const;
  // Set puts key in force for id (on) or lifts it (off).
  void Set(Kind kind, const std::string& key, uint64_t id, bool on);

 private:
  mutable absl::Mutex mu_;
  std::array<absl::flat_hash_map<std::string, std::vector<uint64_t>>, kKinds> keys_
      ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> count_{0};
};

}  // namespace agate::cases

#endif  // AGATE_CASES_SCOPES_IN_FORCE_H_
