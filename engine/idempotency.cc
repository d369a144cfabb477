#include "engine/idempotency.h"

#include <algorithm>

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
    : clock_(clock), options_(options) {}

IdempotencyCache::Digest IdempotencyCache::Prefix(absl::string_view digest) {
  Digest out{};
  std::copy_n(digest.begin(), std::min(digest.size(), out.size()), out.begin());
  return out;
}

IdempotencyCache::Shard& IdempotencyCache::ShardFor(absl::string_view key) const {
  return shards_[absl::HashOf(key) % kShards];
}

void IdempotencyCache::ExpireLocked(Shard& shard, absl::Time now) const {
  const size_t per_shard = std::max<size_t>(1, options_.max_entries / kShards);
  const absl::Time horizon = now - options_.window;
  while (!shard.order.empty() &&
         (shard.order.size() > per_shard || shard.order.front().inserted < horizon)) {
    const Order& oldest = shard.order.front();
    if (auto it = shard.entries.find(*oldest.key);
        it != shard.entries.end() && it->second.seq == oldest.seq) {
      shard.entries.erase(it);
    }
    shard.order.pop_front();
  }
}

IdempotencyCache::Result IdempotencyCache::Find(absl::string_view key, absl::string_view digest,
                                                v1::EvaluateResponse* response,
                                                absl::Time* decided_at) const {
  Shard& shard = ShardFor(key);
  absl::MutexLock lock(&shard.mu);
  auto it = shard.entries.find(key);
  if (it == shard.entries.end() || it->second.decided_at < clock_.Now() - options_.window) {
    return kMiss;
  }
  if (decided_at != nullptr) *decided_at = it->second.decided_at;
  if (it->second.digest != Prefix(digest)) return kConflict;
  response->ParseFromString(it->second.response);
  return kHit;
}

bool IdempotencyCache::Insert(std::string key, std::string digest, std::string response,
                              absl::Time decided_at, v1::EvaluateResponse* existing) {
  const absl::Time now = clock_.Now();
  if (decided_at < now - options_.window) return true;  // too old to keep: nothing to replay
  Shard& shard = ShardFor(key);
  absl::MutexLock lock(&shard.mu);
  ExpireLocked(shard, now);
  auto [it, inserted] = shard.entries.try_emplace(std::move(key));
  if (!inserted && it->second.decided_at >= now - options_.window) {
    if (existing != nullptr) existing->ParseFromString(it->second.response);
    return false;
  }
  // New, or replacing one past the window that the oldest-first expiry has not reached yet.
  const uint64_t seq = shard.next_seq++;
  it->second = Entry{Prefix(digest), std::move(response), decided_at, seq};
  shard.order.push_back(Order{decided_at, &it->first, seq});
  ExpireLocked(shard, now);
  return true;
}

size_t IdempotencyCache::size() const {
  size_t total = 0;
  for (Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    total += shard.entries.size();
  }
  return total;
}

}  // namespace agate::engine
