#include "service/slot_index.h"

#include <cstdint>
#include <deque>
#include <random>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace agate::service {

namespace {

// An index over its own table, for up to max_size entries.
struct TestIndex {
  explicit TestIndex(size_t max_size)
      : table(SlotIndex::CapacityFor(max_size)), index(table.data(), table.size()) {}
  std::vector<SlotIndex::Entry> table;  // value-initialized: all zero, as a fresh region is
  SlotIndex index;
};

// A key is its slot number here; the hash is whatever the test chooses.
uint32_t FindSlot(const SlotIndex& index, size_t hash, uint32_t slot) {
  return index.Find(hash, [slot](uint32_t s) { return s == slot; });
}

TEST(SlotIndexTest, EmptyFindsNothingAndErasesNothing) {
  TestIndex t(10);
  EXPECT_EQ(FindSlot(t.index, 42, 1), SlotIndex::kNone);
  EXPECT_FALSE(t.index.Erase(42, 1));
  EXPECT_EQ(t.index.size(), 0u);
  SlotIndex none;  // no table at all
  EXPECT_EQ(FindSlot(none, 42, 1), SlotIndex::kNone);
  EXPECT_FALSE(none.Erase(42, 1));
  EXPECT_FALSE(none.Insert(42, 1));
}

TEST(SlotIndexTest, CapacityIsAPowerOfTwoAtLeastTwiceTheEntries) {
  EXPECT_EQ(SlotIndex::CapacityFor(0), 16u);
  EXPECT_EQ(SlotIndex::CapacityFor(8), 16u);
  EXPECT_EQ(SlotIndex::CapacityFor(9), 32u);
  EXPECT_EQ(SlotIndex::CapacityFor(12'500), 32'768u);
}

// Slot 0 is stored as 1 (0 marks a free entry): it is found like any other.
TEST(SlotIndexTest, SlotZeroIsAnEntryLikeAnyOther) {
  TestIndex t(4);
  ASSERT_TRUE(t.index.Insert(5, 0));
  EXPECT_EQ(FindSlot(t.index, 5, 0), 0u);
  EXPECT_TRUE(t.index.Erase(5, 0));
  EXPECT_EQ(FindSlot(t.index, 5, 0), SlotIndex::kNone);
}

TEST(SlotIndexTest, RefusesToFillPastHalf) {
  TestIndex t(8);  // 16 positions
  for (uint32_t s = 0; s < 8; ++s) EXPECT_TRUE(t.index.Insert(s * 7, s)) << s;
  EXPECT_FALSE(t.index.Insert(99, 8));
  EXPECT_EQ(t.index.size(), 8u);
  EXPECT_EQ(FindSlot(t.index, 99, 8), SlotIndex::kNone);
  EXPECT_TRUE(t.index.Erase(0, 0));
  EXPECT_TRUE(t.index.Insert(99, 8));
  EXPECT_EQ(FindSlot(t.index, 99, 8), 8u);
}

TEST(SlotIndexTest, FindsWhatWasInsertedAndNotWhatWasErased) {
  TestIndex t(10);
  SlotIndex& index = t.index;
  ASSERT_TRUE(index.Insert(0x1234'5678'9abc'def0, 3));
  ASSERT_TRUE(index.Insert(0x0fed'cba9'8765'4321, 4));
  EXPECT_EQ(FindSlot(index, 0x1234'5678'9abc'def0, 3), 3u);
  EXPECT_EQ(FindSlot(index, 0x0fed'cba9'8765'4321, 4), 4u);
  EXPECT_EQ(FindSlot(index, 0x0fed'cba9'8765'4321, 3), SlotIndex::kNone);  // not its hash
  EXPECT_TRUE(index.Erase(0x1234'5678'9abc'def0, 3));
  EXPECT_FALSE(index.Erase(0x1234'5678'9abc'def0, 3));
  EXPECT_EQ(FindSlot(index, 0x1234'5678'9abc'def0, 3), SlotIndex::kNone);
  EXPECT_EQ(FindSlot(index, 0x0fed'cba9'8765'4321, 4), 4u);
  EXPECT_EQ(index.size(), 1u);
}

// Keys whose hashes share the low 32 bits (the tag) are told apart by the caller's predicate,
// and erasing one from the middle of their run leaves the others reachable.
TEST(SlotIndexTest, SameTagIsToldApartByTheKey) {
  TestIndex t(40);
  SlotIndex& index = t.index;
  const size_t hash = 0x7777'7777'0000'0005;
  for (uint32_t s = 0; s < 40; ++s) ASSERT_TRUE(index.Insert(hash + (size_t{s} << 32), s));
  for (uint32_t s = 0; s < 40; ++s) EXPECT_EQ(FindSlot(index, hash, s), s) << s;
  for (uint32_t s = 0; s < 40; s += 3) EXPECT_TRUE(index.Erase(hash, s)) << s;
  for (uint32_t s = 0; s < 40; ++s) {
    EXPECT_EQ(FindSlot(index, hash, s), s % 3 == 0 ? SlotIndex::kNone : s) << s;
  }
}

// A run of entries that starts at the table's last position wraps to its first; erasing from it
// shifts the wrapped entries back across the end.
TEST(SlotIndexTest, RunsWrapAroundTheEndOfTheTable) {
  TestIndex t(8);
  SlotIndex& index = t.index;
  ASSERT_EQ(index.capacity(), 16u);
  for (uint32_t s = 0; s < 6; ++s) ASSERT_TRUE(index.Insert(15, s));  // home 15 of 16
  ASSERT_TRUE(index.Insert(0, 100));  // home 0, already taken by the wrapped run
  ASSERT_TRUE(index.Insert(1, 101));
  EXPECT_TRUE(index.Erase(15, 0));
  EXPECT_TRUE(index.Erase(15, 2));
  for (uint32_t s : {1u, 3u, 4u, 5u}) EXPECT_EQ(FindSlot(index, 15, s), s) << s;
  EXPECT_EQ(FindSlot(index, 0, 100), 100u);
  EXPECT_EQ(FindSlot(index, 1, 101), 101u);
  EXPECT_EQ(FindSlot(index, 15, 0), SlotIndex::kNone);
  EXPECT_EQ(index.size(), 6u);
}

// What the idempotency cache does once full: forget the oldest, insert a new one. Every live key
// stays reachable, checked against a reference map.
// Hashes are drawn from a small range so that runs are long and erases shift entries often.
TEST(SlotIndexTest, SteadyStateMatchesAReferenceMap) {
  std::mt19937_64 random(7);
  TestIndex t(700);
  SlotIndex& index = t.index;
  std::unordered_map<uint32_t, size_t> reference;  // slot -> hash
  std::deque<uint32_t> order;
  std::vector<std::pair<uint32_t, size_t>> erased;  // a sample
  uint32_t next = 0;
  auto insert = [&] {
    const size_t hash = random() % 512 | (random() << 32);  // tags 0-511: collisions galore
    ASSERT_TRUE(index.Insert(hash, next));
    reference[next] = hash;
    order.push_back(next++);
  };
  for (int i = 0; i < 700; ++i) insert();
  for (int round = 0; round < 20'000; ++round) {
    const uint32_t oldest = order.front();
    order.pop_front();
    ASSERT_TRUE(index.Erase(reference[oldest], oldest)) << round;
    if (round % 101 == 0) erased.emplace_back(oldest, reference[oldest]);
    reference.erase(oldest);
    insert();
    if (round % 997 == 0) {
      for (const auto& [slot, hash] : reference) ASSERT_EQ(FindSlot(index, hash, slot), slot);
    }
  }
  EXPECT_EQ(index.size(), reference.size());
  for (const auto& [slot, hash] : reference) EXPECT_EQ(FindSlot(index, hash, slot), slot);
  ASSERT_FALSE(erased.empty());
  for (const auto& [slot, hash] : erased) EXPECT_EQ(FindSlot(index, hash, slot), SlotIndex::kNone);
}

}  // namespace
}  // namespace agate::service
