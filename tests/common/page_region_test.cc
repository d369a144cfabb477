#include "common/page_region.h"

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>

#include "gtest/gtest.h"

namespace agate {
namespace {

TEST(PageRegionTest, IsZeroedWritableAndStartsOnAHugePage) {
  const size_t bytes = 5 * PageRegion::kHugePage + 123;
  PageRegion region = *PageRegion::Create(bytes);
  ASSERT_NE(region.data(), nullptr);
  EXPECT_EQ(region.size(), bytes);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(region.data()) % PageRegion::kHugePage, 0u);
  auto* p = static_cast<unsigned char*>(region.data());
  for (size_t i = 0; i < bytes; i += 4096) ASSERT_EQ(p[i], 0) << i;
  EXPECT_EQ(p[bytes - 1], 0);
  std::memset(p, 0xab, bytes);  // all of it is ours
  EXPECT_EQ(p[bytes - 1], 0xab);
}

TEST(PageRegionTest, ASmallRegionIsZeroedAndWritable) {
  PageRegion region = *PageRegion::Create(1000);
  ASSERT_NE(region.data(), nullptr);
  EXPECT_FALSE(region.huge_pages_advised());
  auto* p = static_cast<unsigned char*>(region.data());
  for (size_t i = 0; i < 1000; ++i) ASSERT_EQ(p[i], 0) << i;
  std::memset(p, 0xcd, 1000);
  EXPECT_EQ(p[999], 0xcd);
}

TEST(PageRegionTest, EmptyRegionHasNoMemory) {
  PageRegion region = *PageRegion::Create(0);
  EXPECT_EQ(region.data(), nullptr);
  EXPECT_EQ(region.size(), 0u);
}

size_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// The region is reserved, not backed: a region far larger than what is touched costs only the
// pages touched (here 1 GiB reserved, one page written).
TEST(PageRegionTest, ReservingIsNotBacking) {
  const size_t before = ResidentBytes();
  PageRegion region = *PageRegion::Create(size_t{1} << 30);
  ASSERT_NE(region.data(), nullptr);
  static_cast<char*>(region.data())[0] = 1;
  EXPECT_EQ(static_cast<char*>(region.data())[0], 1);
  EXPECT_LT(ResidentBytes(), before + (size_t{64} << 20));
}

}  // namespace
}  // namespace agate
