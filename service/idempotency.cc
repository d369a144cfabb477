#include "service/idempotency.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace agate::service {

std::string IdempotencyKey(const engine::Request& request) {
  return absl::StrCat(request.tenant_id(), absl::string_view("\0", 1), request.request_id());
}

std::string RequestDigest(const engine::Request& request) {
  // Deterministic serialization orders map entries (signals, evidence, attributes), so equal
  // contents give equal bytes.
  thread_local std::string bytes;
  bytes.clear();
  {
    google::protobuf::io::StringOutputStream out(&bytes);
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.SetSerializationDeterministic(true);
    request.SerializeToCodedStream(&coded);
  }
  const Sha256::Bytes digest = ThreadSha256().Digest(bytes);
  return std::string(digest.begin(), digest.end());
}

namespace {

size_t AlignUp(size_t n, size_t alignment) { return (n + alignment - 1) / alignment * alignment; }

}  // namespace

// The region holds every shard's index table, then every shard's ring, then (aligned) every
// shard's slots.
size_t IdempotencyCache::SlotsOffset(size_t per_shard) {
  return AlignUp(kShards * (SlotIndex::CapacityFor(per_shard) * sizeof(SlotIndex::Entry) +
                            per_shard * sizeof(uint32_t)),
                 alignof(Slot));
}

size_t IdempotencyCache::PerShard(size_t max_entries) {
  return std::max<size_t>(1, max_entries / kShards);
}

size_t IdempotencyCache::ReservedBytes(size_t max_entries) {
  const size_t per_shard = PerShard(max_entries);
  return SlotsOffset(per_shard) + kShards * per_shard * sizeof(Slot);
}

absl::StatusOr<std::unique_ptr<IdempotencyCache>> IdempotencyCache::Create(
    const Clock& clock, IdempotencyOptions options) {
  absl::StatusOr<PageRegion> region = PageRegion::Create(ReservedBytes(options.max_entries));
  if (!region.ok()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot reserve memory for ", options.max_entries, " idempotency entries (",
                     ReservedBytes(options.max_entries) / (1 << 20), " MiB)"));
  }
  return std::unique_ptr<IdempotencyCache>(
      new IdempotencyCache(clock, options, *std::move(region)));
}

IdempotencyCache::IdempotencyCache(const Clock& clock, IdempotencyOptions options,
                                   PageRegion region)
    : clock_(clock),
      options_(options),
      per_shard_(PerShard(options.max_entries)),
      region_(std::move(region)) {
  const size_t table = SlotIndex::CapacityFor(per_shard_);
  auto* tables = static_cast<SlotIndex::Entry*>(region_.data());
  auto* rings = reinterpret_cast<uint32_t*>(tables + kShards * table);
  auto* slots =
      reinterpret_cast<Slot*>(static_cast<char*>(region_.data()) + SlotsOffset(per_shard_));
  for (size_t i = 0; i < kShards; ++i) {
    shards_[i].index = SlotIndex(tables + i * table, table);
    shards_[i].order = Order(rings + i * per_shard_, per_shard_);
    shards_[i].slots = slots + i * per_shard_;
  }
}

IdempotencyCache::~IdempotencyCache() {
  for (Shard& shard : shards_) {
    for (uint32_t n = 0; n < shard.slots_used; ++n) shard.slots[n].~Slot();
  }
}

IdempotencyCache::Digest IdempotencyCache::Prefix(absl::string_view digest) {
  Digest out{};
  std::copy_n(digest.begin(), std::min(digest.size(), out.size()), out.begin());
  return out;
}

void IdempotencyCache::Slot::Assign(absl::string_view key, absl::string_view response) {
  static_assert(sizeof(Slot) == 192, "three cache lines");
  const size_t size = key.size() + response.size();
  char* out = inline_bytes;
  if (size > kInlineBytes) {
    if (heap == nullptr || heap_capacity < size) {
      heap = std::make_unique<char[]>(size);
      heap_capacity = static_cast<uint32_t>(size);
    }
    out = heap.get();
  } else if (heap != nullptr) {
    heap.reset();  // a large escalation's buffer is not kept for the small entries after it
    heap_capacity = 0;
  }
  std::memcpy(out, key.data(), key.size());
  std::memcpy(out + key.size(), response.data(), response.size());
  key_size = static_cast<uint32_t>(key.size());
  response_size = static_cast<uint32_t>(response.size());
}

size_t IdempotencyCache::Hash(absl::string_view key) { return absl::HashOf(key); }

IdempotencyCache::Shard& IdempotencyCache::ShardFor(size_t hash) const {
  // The top bits: the shard's SlotIndex places and tags entries by the low 32.
  static_assert(kShards == 16);
  return shards_[hash >> (8 * sizeof(size_t) - 4)];
}

uint32_t IdempotencyCache::FindLocked(const Shard& shard, absl::string_view key, size_t hash) {
  return shard.index.Find(hash, [&](uint32_t n) { return shard.slots[n].key() == key; });
}

void IdempotencyCache::ForgetLocked(Shard& shard, size_t keep, absl::Time horizon) const {
  while (!shard.order.empty()) {
    const uint32_t oldest = shard.order.front();
    Slot& slot = shard.slots[oldest];
    if (slot.live && shard.order.size() <= keep && slot.decided_at >= horizon) break;
    if (slot.live) shard.index.Erase(slot.hash, oldest);
    slot.live = false;
    shard.order.pop_front();
    shard.free.push_back(oldest);
  }
}

IdempotencyCache::Result IdempotencyCache::Find(absl::string_view key, absl::string_view digest,
                                                std::string* response,
                                                absl::Time* decided_at) const {
  const size_t hash = Hash(key);
  Shard& shard = ShardFor(hash);
  std::lock_guard<std::mutex> lock(shard.mu);
  const uint32_t n = FindLocked(shard, key, hash);
  if (n == SlotIndex::kNone) return kMiss;
  const Slot& slot = shard.slots[n];
  if (slot.decided_at < clock_.Now() - options_.window) return kMiss;
  if (decided_at != nullptr) *decided_at = slot.decided_at;
  if (slot.digest != Prefix(digest)) return kConflict;
  const absl::string_view bytes = slot.response();
  response->assign(bytes.data(), bytes.size());
  return kHit;
}

bool IdempotencyCache::FindWire(absl::string_view key, absl::string_view wire_digest,
                                std::string* response) const {
  const Digest wire = Prefix(wire_digest);
  if (wire == Digest{}) return false;
  const size_t hash = Hash(key);
  Shard& shard = ShardFor(hash);
  std::lock_guard<std::mutex> lock(shard.mu);
  const uint32_t n = FindLocked(shard, key, hash);
  if (n == SlotIndex::kNone) return false;
  const Slot& slot = shard.slots[n];
  if (slot.wire != wire || slot.decided_at < clock_.Now() - options_.window) return false;
  const absl::string_view bytes = slot.response();
  response->append(bytes.data(), bytes.size());
  return true;
}

bool IdempotencyCache::Insert(absl::string_view key, absl::string_view digest,
                              absl::string_view response, absl::Time decided_at,
                              std::string* existing, absl::string_view wire_digest) {
  const absl::Time horizon = clock_.Now() - options_.window;
  if (decided_at < horizon) return true;  // too old to keep: nothing to replay
  const size_t hash = Hash(key);
  Shard& shard = ShardFor(hash);
  std::lock_guard<std::mutex> lock(shard.mu);
  if (const uint32_t k = FindLocked(shard, key, hash); k != SlotIndex::kNone) {
    Slot& kept = shard.slots[k];
    if (kept.decided_at >= horizon) {
      if (existing != nullptr) {
        const absl::string_view bytes = kept.response();
        existing->assign(bytes.data(), bytes.size());
      }
      return false;
    }
    // Past the window but not reached by the oldest-first forgetting yet: replaced below; its
    // slot leaves `order` when its turn comes.
    kept.live = false;
    shard.index.Erase(hash, k);
  }
  ForgetLocked(shard, per_shard_ - 1, horizon);  // room for one more
  uint32_t n;
  if (!shard.free.empty()) {
    n = shard.free.back();
    shard.free.pop_back();
  } else {
    n = shard.slots_used++;
    new (&shard.slots[n]) Slot();
  }
  Slot& slot = shard.slots[n];
  slot.Assign(key, response);
  slot.live = true;
  slot.digest = Prefix(digest);
  slot.wire = wire_digest.empty() ? Digest{} : Prefix(wire_digest);
  slot.hash = hash;
  slot.decided_at = decided_at;
  shard.order.push_back(n);
  // The table has room for twice the shard's slots: a refusal would be a bug, and would only
  // make this decision unreplayable.
  if (!shard.index.Insert(hash, n)) slot.live = false;
  return true;
}

size_t IdempotencyCache::size() const {
  size_t total = 0;
  for (Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    total += shard.index.size();
  }
  return total;
}

}  // namespace agate::service
