// IdempotencyCache: the same request gets the same decision.
//
// Evaluate keeps every decision's response by (tenant_id, request_id) for a window (10 minutes by
// default). A request whose tenant_id and request_id were decided within the window gets the
// stored response again (replayed) without being evaluated, counted or opening a case; one with
// the same ids but other contents (another digest) is refused: a request_id names one request.
// The durable store keeps the rows too (engine/case_journal.h DecisionRow), so the promise holds
// across a restart: the server Inserts them back at start-up.
//
// Memory is bounded: at most max_entries responses are kept (a 192-byte slot each, plus about 40
// bytes of index; a key and response larger than 128 bytes, an escalation's, add a heap buffer);
// past that (or the window) the oldest are
// forgotten first, so under a sustained rate above max_entries per window the effective window
// shrinks: 200,000 entries cover 10 minutes up to 333 requests/s, 7 s at 30,000 requests/s
// (documented in README.md "Durability").
//
// Thread-safe: keys are spread over shards with a mutex each. Each shard keeps its entries in
// slots that are reused oldest first, indexed by a flat hash map whose keys view the slots and
// carry their hash: once the cache is full, an ALLOW allocates nothing and touches few cache
// lines (the slot it reuses, two index probes), and the map's rehashes read no slot. With 200,000
// entries the cache is far larger than the CPU's caches, so every line touched is a miss: the node
// map with three heap blocks per entry that this replaced cost the server about 10% of its
// throughput on one core, and rehashes that read every slot 1 µs per insert (docs/perf.md).
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
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
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
  // Entries decided before the window are not kept. The bytes are copied.
  bool Insert(absl::string_view key, absl::string_view digest, absl::string_view response,
              absl::Time decided_at, v1::EvaluateResponse* existing = nullptr);

  // size returns how many responses are kept.
  size_t size() const;

 private:
  // The first 16 bytes of the SHA-256: plenty to tell two requests apart.
  using Digest = std::array<char, 16>;
  static Digest Prefix(absl::string_view digest);
  // One kept decision: the key, then the serialized response, inline when they fit (an ALLOW's
  // key and response take 60-100 bytes), else in a heap buffer the slot keeps for the entries
  // that reuse it. 192 bytes: three cache lines, the first holding the key.
  struct Slot {
    static constexpr size_t kInlineBytes = 128;
    absl::string_view key() const { return absl::string_view(bytes(), key_size); }
    absl::string_view response() const {
      return absl::string_view(bytes() + key_size, response_size);
    }
    const char* bytes() const { return heap != nullptr ? heap.get() : inline_bytes; }
    // Assign stores key and response, reusing the slot's memory.
    void Assign(absl::string_view key, absl::string_view response);

    char inline_bytes[kInlineBytes];
    uint32_t key_size = 0;
    uint32_t response_size = 0;
    std::unique_ptr<char[]> heap;  // null: the bytes are inline
    uint32_t heap_capacity = 0;
    bool live = false;  // false: forgotten (or replaced) but still in `order`
    Digest digest{};
    size_t hash = 0;  // of the key: forgetting the slot need not read the key's cache line
    absl::Time decided_at;
  };
  // The index's key: a key (viewing its slot) and its hash. The hash is kept so that the map's
  // rehashes (frequent: every insert of a full cache erases one entry, and the map cleans up its
  // erased entries in place when it runs out of room) never read the slots, each a cache miss.
  struct IndexKey {
    absl::string_view key;
    size_t hash;
    // Erasing a slot's own entry compares the views by address: the key's bytes stay unread.
    bool operator==(const IndexKey& other) const {
      return hash == other.hash &&
             ((key.data() == other.key.data() && key.size() == other.key.size()) ||
              key == other.key);
    }
  };
  struct IndexHash {
    size_t operator()(const IndexKey& k) const { return k.hash; }
  };
  struct Shard {
    // A std::mutex: Debian's absl::Mutex costs several times more per lock/unlock pair.
    mutable std::mutex mu;
    // Everything below is guarded by mu.
    std::deque<Slot> slots;      // stable addresses; grows to capacity
    std::vector<uint32_t> free;  // slots not in `order`
    std::deque<uint32_t> order;  // slots in insertion order, oldest first
    absl::flat_hash_map<IndexKey, uint32_t, IndexHash> index;  // live key -> slot
  };
  static constexpr size_t kShards = 16;

  // Hash is absl::HashOf(key); its top bits pick the shard, the rest place it in the shard's index.
  static size_t Hash(absl::string_view key);
  Shard& ShardFor(size_t hash) const;
  // ForgetLocked drops the oldest slots while more than `keep` are in use or the oldest is
  // decided before horizon (shard.mu held).
  void ForgetLocked(Shard& shard, size_t keep, absl::Time horizon) const;

  const Clock& clock_;
  const IdempotencyOptions options_;
  const size_t per_shard_;
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace agate::engine

#endif  // AGATE_ENGINE_IDEMPOTENCY_H_
