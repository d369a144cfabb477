#include "common/page_region.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace agate {

absl::StatusOr<PageRegion> PageRegion::Create(size_t bytes) {
  PageRegion region;
  region.size_ = bytes;
  if (bytes == 0) return region;
  // A region smaller than a huge page, or one mmap refuses, is plain zeroed memory.
  if (bytes >= kHugePage && region.Map()) return region;
  region.data_ = std::calloc(1, bytes);
  if (region.data_ == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot reserve ", bytes / (1 << 20), " MiB of memory"));
  }
  return region;
}

PageRegion::PageRegion(PageRegion&& other) noexcept { *this = std::move(other); }

PageRegion& PageRegion::operator=(PageRegion&& other) noexcept {
  if (this == &other) return *this;
  Release();
  data_ = std::exchange(other.data_, nullptr);
  size_ = std::exchange(other.size_, 0);
  mapping_ = std::exchange(other.mapping_, nullptr);
  mapping_size_ = std::exchange(other.mapping_size_, 0);
  advised_ = std::exchange(other.advised_, false);
  return *this;
}

bool PageRegion::Map() {
  // Reserve a huge page more than asked, so that the region can start on a huge page boundary.
  const size_t length = (size_ + kHugePage - 1) / kHugePage * kHugePage + kHugePage;
  void* mapping = mmap(nullptr, length, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mapping == MAP_FAILED) return false;
  mapping_ = mapping;
  mapping_size_ = length;
  const uintptr_t start = reinterpret_cast<uintptr_t>(mapping);
  data_ = reinterpret_cast<void*>((start + kHugePage - 1) / kHugePage * kHugePage);
  advised_ = madvise(data_, length - kHugePage, MADV_HUGEPAGE) == 0;
  return true;
}

PageRegion::~PageRegion() { Release(); }

void PageRegion::Release() {
  if (mapping_ != nullptr) {
    munmap(mapping_, mapping_size_);
  } else {
    std::free(data_);
  }
  data_ = nullptr;
  mapping_ = nullptr;
  size_ = mapping_size_ = 0;
}

}  // namespace agate
