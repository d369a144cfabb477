// PageRegion: zeroed memory reserved whole and backed as it is touched, in 2 MiB transparent huge
// pages where the kernel offers them (madvise(MADV_HUGEPAGE); a no-op where THP is off).
//
// For large tables read at random on the request path (the idempotency cache's index and slots):
// with 4 KiB pages a page not touched for a while is slow on its next touch (docs/perf.md, "cold
// pages"); in 2 MiB pages the same tables are a few pages, all hot.
// Untouched memory costs no RSS, so a region sized for a full cache holds RSS at what is used,
// rounded up to 2 MiB.
//
// The reservation is MAP_NORESERVE (not counted against overcommit); if mmap fails, the region is
// calloc'd instead (plain pages), and if that fails Create returns RESOURCE_EXHAUSTED. A region
// smaller than a huge page is simply calloc'd (one huge page would be mostly unused).
//
// Example:
//   ASSIGN_OR_RETURN(PageRegion region, PageRegion::Create(n * sizeof(Entry)));
//   auto* entries = static_cast<Entry*>(region.data());   // all zero bytes
#ifndef AGATE_COMMON_PAGE_REGION_H_
#define AGATE_COMMON_PAGE_REGION_H_

#include <cstddef>

#include "absl/status/statusor.h"

namespace agate {

class PageRegion {
 public:
  // Huge pages are this size on x86-64 and arm64 (4 KiB base pages).
  static constexpr size_t kHugePage = size_t{2} << 20;

  // Create reserves bytes (zero: an empty region). RESOURCE_EXHAUSTED naming the size when the
  // memory cannot be had.
  static absl::StatusOr<PageRegion> Create(size_t bytes);
  PageRegion() = default;
  ~PageRegion();
  PageRegion(PageRegion&& other) noexcept;
  PageRegion& operator=(PageRegion&& other) noexcept;
  PageRegion(const PageRegion&) = delete;
  PageRegion& operator=(const PageRegion&) = delete;

  void* data() const { return data_; }
  size_t size() const { return size_; }
  // huge_pages_advised says whether the kernel accepted MADV_HUGEPAGE for the region.
  bool huge_pages_advised() const { return advised_; }

 private:
  bool Map();      // the 2 MiB-aligned, advised mapping; false if mmap failed
  void Release();  // frees the memory; the region is empty after

  void* data_ = nullptr;
  size_t size_ = 0;
  void* mapping_ = nullptr;  // what munmap releases; null: data_ was calloc'd
  size_t mapping_size_ = 0;
  bool advised_ = false;
};

}  // namespace agate

#endif  // AGATE_COMMON_PAGE_REGION_H_
