#include "service/slot_index.h"

namespace agate::service {

size_t SlotIndex::CapacityFor(size_t max_size) {
  size_t capacity = 16;
  while (capacity < 2 * max_size) capacity *= 2;
  return capacity;
}

bool SlotIndex::Insert(size_t hash, uint32_t slot) {
  if (2 * (size_ + 1) > capacity()) return false;
  const uint32_t tag = static_cast<uint32_t>(hash);
  size_t i = tag & mask_;
  while (table_[i].slot_plus_one != 0) i = (i + 1) & mask_;
  table_[i] = Entry{.slot_plus_one = slot + 1, .tag = tag};
  ++size_;
  return true;
}

bool SlotIndex::Erase(size_t hash, uint32_t slot) {
  if (table_ == nullptr) return false;
  size_t hole = static_cast<uint32_t>(hash) & mask_;
  for (;; hole = (hole + 1) & mask_) {
    if (table_[hole].slot_plus_one == 0) return false;
    if (table_[hole].slot_plus_one == slot + 1) break;
  }
  // Backward shift: each entry after the hole, up to the next free position, moves into the hole
  // when the hole lies between its home and where it is (so it is still found from its home).
  for (size_t i = (hole + 1) & mask_; table_[i].slot_plus_one != 0; i = (i + 1) & mask_) {
    const size_t home = table_[i].tag & mask_;
    if (((i - home) & mask_) >= ((i - hole) & mask_)) {
      table_[hole] = table_[i];
      hole = i;
    }
  }
  table_[hole] = Entry{.slot_plus_one = 0, .tag = 0};
  --size_;
  return true;
}

}  // namespace agate::service
