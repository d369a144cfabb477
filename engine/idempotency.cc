#include "engine/idempotency.h"

#include <algorithm>
#include <cstring>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace agate::engine {

std::string IdempotencyKey(const Request& request) {
  return absl::StrCat(request.tenant_id(), absl::string_view("\0", 1), request.request_id());
}

std::string RequestDigest(const Request& request) {
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

IdempotencyCache::IdempotencyCache(const Clock& clock, IdempotencyOptions options)
    : clock_(clock),
      options_(options),
      per_shard_(std::max<size_t>(1, options.max_entries / kShards)) {}

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
  // The top bits: the index places entries by the others (its low 7 bits tag each entry).
  static_assert(kShards == 16);
  return shards_[hash >> (8 * sizeof(size_t) - 4)];
}

void IdempotencyCache::ForgetLocked(Shard& shard, size_t keep, absl::Time horizon) const {
  while (!shard.order.empty()) {
    const uint32_t oldest = shard.order.front();
    Slot& slot = shard.slots[oldest];
    if (slot.live && shard.order.size() <= keep && slot.decided_at >= horizon) break;
    if (slot.live) shard.index.erase(IndexKey{slot.key(), slot.hash});
    slot.live = false;
    shard.order.pop_front();
    shard.free.push_back(oldest);
  }
}

IdempotencyCache::Result IdempotencyCache::Find(absl::string_view key, absl::string_view digest,
                                                v1::EvaluateResponse* response,
                                                absl::Time* decided_at) const {
  const size_t hash = Hash(key);
  Shard& shard = ShardFor(hash);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.index.find(IndexKey{key, hash});
  if (it == shard.index.end()) return kMiss;
  const Slot& slot = shard.slots[it->second];
  if (slot.decided_at < clock_.Now() - options_.window) return kMiss;
  if (decided_at != nullptr) *decided_at = slot.decided_at;
  if (slot.digest != Prefix(digest)) return kConflict;
  const absl::string_view bytes = slot.response();
  response->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  return kHit;
}

bool IdempotencyCache::Insert(absl::string_view key, absl::string_view digest,
                              absl::string_view response, absl::Time decided_at,
                              v1::EvaluateResponse* existing) {
  const absl::Time horizon = clock_.Now() - options_.window;
  if (decided_at < horizon) return true;  // too old to keep: nothing to replay
  const size_t hash = Hash(key);
  Shard& shard = ShardFor(hash);
  std::lock_guard<std::mutex> lock(shard.mu);
  if (auto it = shard.index.find(IndexKey{key, hash}); it != shard.index.end()) {
    Slot& kept = shard.slots[it->second];
    if (kept.decided_at >= horizon) {
      if (existing != nullptr) {
        const absl::string_view bytes = kept.response();
        existing->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
      }
      return false;
    }
    // Past the window but not reached by the oldest-first forgetting yet: replaced below; its
    // slot leaves `order` when its turn comes.
    kept.live = false;
    shard.index.erase(it);
  }
  ForgetLocked(shard, per_shard_ - 1, horizon);  // room for one more
  uint32_t n;
  if (!shard.free.empty()) {
    n = shard.free.back();
    shard.free.pop_back();
  } else {
    n = static_cast<uint32_t>(shard.slots.size());
    shard.slots.emplace_back();
  }
  Slot& slot = shard.slots[n];
  slot.Assign(key, response);
  slot.live = true;
  slot.digest = Prefix(digest);
  slot.hash = hash;
  slot.decided_at = decided_at;
  shard.order.push_back(n);
  shard.index.emplace(IndexKey{slot.key(), hash}, n);
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

}  // namespace agate::engine
