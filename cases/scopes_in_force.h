// ScopesInForce: what open cases impose on later requests until they are acknowledged.
//
//   kSafeMode  an OPEN SAFE_MODE case: non-critical actions of its workflow get SAFE_MODE;
//   kPaused    a case that timed out with pause_workflow: every action of its workflow gets HOLD;
//   kDisabled  a case that timed out with disable_credential: every action with its credential
//              gets DENY.
// A workflow is keyed by tenant '\0' workflow, a credential by tenant '\0' credential. Several
// cases may put the same key in force; the oldest answers.
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
  enum Kind { kSafeMode = 0, kPaused = 1, kDisabled = 2 };
  static constexpr int kKinds = 3;

  // The scope that applies to a request: the case imposing it and the verdict it imposes.
  struct Match {
    uint64_t case_seq = 0;
    Kind kind = kSafeMode;
    engine::Verdict verdict = v1::VERDICT_UNSPECIFIED;
  };

  // WorkflowKey and CredentialKey build the keys a case puts in force.
  static std::string WorkflowKey(absl::string_view tenant, absl::string_view workflow);
  static std::string CredentialKey(absl::string_view tenant, absl::string_view credential);

  // empty tells whether no scope is in force anywhere (an atomic load).
  bool empty() const { return count_.load(std::memory_order_acquire) == 0; }
  // Find returns the most restrictive scope that applies to request: a disabled credential
  // (DENY), then safe mode for a non-critical action (SAFE_MODE), then a paused workflow (HOLD).
  std::optional<Match> Find(const engine::Request& request) const;
  // Set puts key in force for case seq (on) or lifts it (off).
  void Set(Kind kind, const std::string& key, uint64_t case_seq, bool on);

 private:
  mutable absl::Mutex mu_;
  std::array<absl::flat_hash_map<std::string, std::vector<uint64_t>>, kKinds> keys_
      ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> count_{0};
};

}  // namespace agate::cases

#endif  // AGATE_CASES_SCOPES_IN_FORCE_H_
