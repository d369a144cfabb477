// SlotIndex: a hash index from keys to slot numbers, in a table of fixed size, with no rehash.
//
// The idempotency cache keeps its entries in numbered slots and needs an index from a key to its
// slot, in memory it provides (a huge-page region, docs/perf.md). A full cache erases one entry
// for every insert; a hash map that marks erased entries (tombstones) must now and then clean
// them up by rehashing the whole table, as absl's flat_hash_map does. SlotIndex uses open
// addressing with linear probing and backward-shift deletion: an erase moves the entries after it
// back into the hole, so there are no tombstones, and the table is sized once for the most
// entries it will hold (at most half full), so it never rehashes or allocates.
//
// Each entry is 8 bytes: the slot number (plus one: an all-zero entry is free, so a table in
// fresh zeroed pages needs no initialization) and the low 32 bits of the key's hash, which place
// the entry and tell most keys apart without reading the slot. The caller owns the keys: Find asks
// it whether a slot holds the key it looks for, and Erase names the slot to drop.
//
// Not thread-safe: the cache guards each shard's index with the shard's mutex.
//
// Example:
//   std::vector<SlotIndex::Entry> table(SlotIndex::CapacityFor(1000));
//   SlotIndex index(table.data(), table.size());
//   index.Insert(hash, 7);
//   uint32_t slot = index.Find(hash, [&](uint32_t s) { return slots[s].key() == key; });
//   index.Erase(hash, 7);
#ifndef AGATE_SERVICE_SLOT_INDEX_H_
#define AGATE_SERVICE_SLOT_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <limits>

namespace agate::service {

class SlotIndex {
 public:
  // Find's answer when no slot holds the key.
  static constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();

  struct Entry {
    uint32_t slot_plus_one;  // 0: free
    uint32_t tag;            // the hash's low 32 bits
  };

  // CapacityFor returns the table size (a power of two, at least 16) for up to max_size entries.
  static size_t CapacityFor(size_t max_size);

  SlotIndex() = default;  // no table: finds nothing, inserts nothing
  // table: capacity entries (a power of two), all zero bytes; the caller keeps it alive.
  SlotIndex(Entry* table, size_t capacity) : table_(table), mask_(capacity - 1) {}

  // Find returns the slot among those inserted with hash for which holds_key(slot) is true, or
  // kNone.
  template <typename HoldsKey>
  uint32_t Find(size_t hash, HoldsKey holds_key) const {
    if (table_ == nullptr) return kNone;
    const uint32_t tag = static_cast<uint32_t>(hash);
    for (size_t i = tag & mask_;; i = (i + 1) & mask_) {
      const Entry& e = table_[i];
      if (e.slot_plus_one == 0) return kNone;
      if (e.tag == tag && holds_key(e.slot_plus_one - 1)) return e.slot_plus_one - 1;
    }
  }

  // Insert adds slot (< kNone) under hash; the caller has checked that its key is absent. It
  // returns false, adding nothing, when the table is half full already.
  bool Insert(size_t hash, uint32_t slot);

  // Erase removes slot, inserted under hash; it returns false if it was not there.
  bool Erase(size_t hash, uint32_t slot);

  size_t size() const { return size_; }
  size_t capacity() const { return table_ == nullptr ? 0 : mask_ + 1; }

 private:
  Entry* table_ = nullptr;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace agate::service

#endif  // AGATE_SERVICE_SLOT_INDEX_H_
