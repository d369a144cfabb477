// IdempotencyCache: the same request gets the same decision.
//
// Evaluate keeps every decision's response by (tenant_id, request_id) for a window (10 minutes by
// default). A request whose tenant_id and request_id were decided within the window gets the
// stored response again (replayed) without being evaluated, counted or opening a case; one with
// the same ids but other contents (another digest) is refused: a request_id names one request.
// The durable store keeps the rows too (engine/case_journal.h DecisionRow), so the promise holds
// across a restart: the server Inserts them back at start-up.
//
// Memory is bounded: at most max_entries responses are kept (about 200 bytes each: the key, a
// 128-bit digest prefix, the serialized response); past that (or the window) the oldest are
// forgotten first, so under a sustained rate above max_entries per window the effective window
// shrinks: 200,000 entries cover 10 minutes up to 333 requests/s, 7 s at 30,000 requests/s
// (documented in README.md "Durability").
//
// Thread-safe: keys are spread over shards with a mutex each.
//
// Example:
//   const std::string key = IdempotencyKey(request), digest = RequestDigest(request);
//   switch (cache.Find(key, digest, &response)) { case IdempotencyCache::kHit: ... }
//   ... evaluate ...
//   cache.Insert(key, digest, response.SerializeAsString(), now, &response);
#ifndef AGATE_ENGINE_IDEMPOTENCY_H_
#define AGATE_ENGINE_IDEMPOTENCY_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/node_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agate/v1/agate.pb.h"
#include "engine/clock.h"
#include "engine/request.h"

namespace agate::engine {

// IdempotencyKey returns tenant_id '\0' request_id.
std::string IdempotencyKey(const Request& request);

// RequestDigest returns the SHA-256 (32 raw bytes) of request's deterministic serialization: two
// requests with the same digest have the same contents.
std::string RequestDigest(const Request& request);

struct IdempotencyOptions {
  // Off, every request is evaluated (the offline `agate eval --matrix`, a what-if tool where
  // sample files reuse request_ids).
  bool enabled = true;
  // How long a decision is kept for its request_id.
  absl::Duration window = absl::Minutes(10);
  // Responses kept at most (over all tenants).
  size_t max_entries = 200'000;
};

class IdempotencyCache {
 public:
  enum Result { kMiss, kHit, kConflict };

  explicit IdempotencyCache(const Clock& clock, IdempotencyOptions options = {});

  // Find looks key up. kHit: the same digest was decided within the window and *response holds
  // that response. kConflict: key was decided for another digest (*decided_at, if not null, says
  // when). kMiss otherwise.
  Result Find(absl::string_view key, absl::string_view digest, v1::EvaluateResponse* response,
              absl::Time* decided_at = nullptr) const;

  // Insert keeps response (serialized) for key unless key is already kept: then it returns false
  // and, if existing is not null, parses the kept response into it (the first answer stands).
  // Entries decided before the window are not kept.
  bool Insert(std::string key, std::string digest, std::string response, absl::Time decided_at,
              v1::EvaluateResponse* existing = nullptr);

  // size returns how many responses are kept.
  size_t size() const;

 private:
  // The first 16 bytes of the SHA-256: plenty to tell two requests apart.
  using Digest = std::array<char, 16>;
  static Digest Prefix(absl::string_view digest);
  struct Entry {
    Digest digest{};
    std::string response;
    absl::Time decided_at;
    uint64_t seq = 0;  // which `order` element owns the entry
  };
  struct Order {
    absl::Time inserted;
    const std::string* key;
    uint64_t seq;
  };
  struct Shard {
    mutable absl::Mutex mu;
    absl::node_hash_map<std::string, Entry> entries ABSL_GUARDED_BY(mu);
    // Insertion order, for forgetting the oldest; keys point into entries' stable nodes.
    std::deque<Order> order ABSL_GUARDED_BY(mu);
    uint64_t next_seq ABSL_GUARDED_BY(mu) = 1;
  };
  static constexpr size_t kShards = 16;

  Shard& ShardFor(absl::string_view key) const;
  void ExpireLocked(Shard& shard, absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);

  const Clock& clock_;
  const IdempotencyOptions options_;
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace agate::engine

#endif  // AGATE_ENGINE_IDEMPOTENCY_H_
