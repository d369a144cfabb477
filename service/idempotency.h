// IdempotencyCache: the same request gets the same decision.
//
// Evaluate keeps every decision's response by (tenant_id, request_id) for a window (10 minutes by
// default). A request whose tenant_id and request_id were decided within the window gets the
// stored response again (replayed) without being evaluated, counted or opening a case; one with
// the same ids but other contents (another digest) is refused: a request_id names one request.
// The durable store keeps the rows too (engine/case_journal.h DecisionRow), so the promise holds
// across a restart: the server Inserts them back at start-up.
//
// Memory is bounded: at most max_entries responses are kept (a 192-byte slot each, plus 20 to 36
// bytes of index and ring; a key and response larger than 112 bytes, an escalation's, add a heap
// buffer); past that (or the window) the oldest are forgotten first, so under a sustained rate
// above max_entries per window the effective window shrinks (docs/operations.md, "Durability").
//
// Thread-safe: keys are spread over shards with a mutex each. Each shard keeps its entries in
// slots that are reused oldest first, indexed by a SlotIndex (8 bytes an entry: the slot and the
// key's hash; a table of fixed size, never rehashed). Tables, rings and slots all live in one
// PageRegion sized for a full cache and backed in 2 MiB pages as it fills: once full, an ALLOW
// allocates nothing and touches a few cache lines (the slot it reuses, two index probes) in
// pages that are always mapped: a full cache is far larger than the CPU's caches, and small pages
// left alone go cold (why, and what this replaced: docs/perf.md).
//
// Example:
//   const std::string key = IdempotencyKey(request), digest = RequestDigest(request);
//   switch (cache.Find(key, digest, &response)) { case IdempotencyCache::kHit: ... }
//   ... evaluate ...
//   cache.Insert(key, digest, response.SerializeAsString(), now, &response);
#ifndef AGATE_SERVICE_IDEMPOTENCY_H_
#define AGATE_SERVICE_IDEMPOTENCY_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agate/v1/agate.pb.h"
#include "common/clock.h"
#include "common/page_region.h"
#include "engine/request.h"
#include "service/slot_index.h"

namespace agate::service {

// IdempotencyKey returns tenant_id '\0' request_id.
std::string IdempotencyKey(const engine::Request& request);

// RequestDigest returns the SHA-256 (32 raw bytes) of request's deterministic serialization: two
// requests with the same digest have the same contents.
std::string RequestDigest(const engine::Request& request);

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

  // Create reserves the memory of a full cache (backed as it fills). RESOURCE_EXHAUSTED naming
  // the size when it cannot be reserved (strict overcommit, ulimit -v).
  static absl::StatusOr<std::unique_ptr<IdempotencyCache>> Create(const Clock& clock,
                                                                  IdempotencyOptions options = {});
  ~IdempotencyCache();
  IdempotencyCache(const IdempotencyCache&) = delete;
  IdempotencyCache& operator=(const IdempotencyCache&) = delete;

  // Find looks key up. kHit: the same digest was decided within the window and *response holds
  // that response's bytes. kConflict: key was decided for another digest (*decided_at, if not
  // null, says when). kMiss otherwise.
  Result Find(absl::string_view key, absl::string_view digest, std::string* response,
              absl::Time* decided_at = nullptr) const;

  // Insert keeps response (serialized) for key unless key is already kept: then it returns false
  // and, if existing is not null, copies the kept response's bytes into it (the first answer
  // stands). Entries decided before the window are not kept. The bytes are copied.
  // wire_digest (optional) identifies the request's bytes as they arrived: FindWire answers a
  // request that comes again byte for byte without it being parsed.
  bool Insert(absl::string_view key, absl::string_view digest, absl::string_view response,
              absl::Time decided_at, std::string* existing = nullptr,
              absl::string_view wire_digest = {});

  // FindWire is Find for a request identified by the digest of its bytes: true, with the kept
  // response's bytes appended to *response, only when key was decided within the window for
  // exactly these bytes. false says nothing (Find decides: the same contents may come in other
  // bytes).
  bool FindWire(absl::string_view key, absl::string_view wire_digest, std::string* response) const;

  // size returns how many responses are kept.
  size_t size() const;

  // ReservedBytes returns the memory a cache of max_entries reserves at construction (backed only
  // as it fills): what a failed reservation asked for.
  static size_t ReservedBytes(size_t max_entries);

 private:
  // The first 16 bytes of the SHA-256: plenty to tell two requests apart.
  using Digest = std::array<char, 16>;
  static Digest Prefix(absl::string_view digest);
  // One kept decision: the key, then the serialized response, inline when they fit (an ALLOW's
  // key and response take 60-100 bytes), else in a heap buffer the slot keeps for the entries
  // that reuse it. 192 bytes: three cache lines, the first holding the key.
  struct Slot {
    static constexpr size_t kInlineBytes = 112;
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
    Digest wire{};    // of the request's bytes as they arrived; all zero: unknown
    size_t hash = 0;  // of the key: forgetting the slot need not read the key's cache line
    absl::Time decided_at;
  };
  // Order: slot numbers oldest first, in a ring of the shard's capacity (in the region).
  class Order {
   public:
    Order() = default;
    Order(uint32_t* ring, size_t capacity) : ring_(ring), capacity_(capacity) {}
    bool empty() const { return size_ == 0; }
    size_t size() const { return size_; }
    uint32_t front() const { return ring_[head_]; }
    void pop_front() {
      head_ = head_ + 1 == capacity_ ? 0 : head_ + 1;
      --size_;
    }
    void push_back(uint32_t slot) {  // size() < capacity
      const size_t tail = head_ + size_;
      ring_[tail < capacity_ ? tail : tail - capacity_] = slot;
      ++size_;
    }

   private:
    uint32_t* ring_ = nullptr;
    size_t capacity_ = 0;
    size_t head_ = 0;
    size_t size_ = 0;
  };
  struct Shard {
    // A std::mutex: Debian's absl::Mutex costs several times more per lock/unlock pair.
    mutable std::mutex mu;
    // Everything below is guarded by mu.
    Slot* slots = nullptr;       // the shard's capacity of them, in the region
    uint32_t slots_used = 0;     // slots[0, slots_used) have been constructed
    std::vector<uint32_t> free;  // constructed slots not in `order`
    Order order;                 // slots in insertion order, oldest first
    SlotIndex index;             // live key -> slot
  };
  static constexpr size_t kShards = 16;

  IdempotencyCache(const Clock& clock, IdempotencyOptions options, PageRegion region);

  // Hash is absl::HashOf(key); its top bits pick the shard, the rest place it in the shard's index.
  static size_t Hash(absl::string_view key);
  Shard& ShardFor(size_t hash) const;
  // PerShard returns a shard's capacity; SlotsOffset where the slots start in the region.
  static size_t PerShard(size_t max_entries);
  static size_t SlotsOffset(size_t per_shard);
  // FindLocked returns the slot holding key (whose hash is hash), or SlotIndex::kNone.
  static uint32_t FindLocked(const Shard& shard, absl::string_view key, size_t hash);
  // ForgetLocked drops the oldest slots while more than `keep` are in use or the oldest is
  // decided before horizon (shard.mu held).
  void ForgetLocked(Shard& shard, size_t keep, absl::Time horizon) const;

  const Clock& clock_;
  const IdempotencyOptions options_;
  const size_t per_shard_;
  // The index tables, rings and slots of every shard, in one region of (transparent) huge pages:
  // a full cache's 40 MB are 20 pages rather than 10,000, so the request path's random reads
  // into it find their pages mapped and hot (docs/perf.md). Pages are backed as the cache fills.
  PageRegion region_;
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace agate::service

#endif  // AGATE_SERVICE_IDEMPOTENCY_H_
