#include "common/page_region.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <new>

namespace agate {

PageRegion::PageRegion(size_t bytes) : size_(bytes) {
  if (bytes == 0) return;
  // A region smaller than a huge page, or one mmap refuses, is plain zeroed memory.
  if (bytes >= kHugePage && Map()) return;
  data_ = std::calloc(1, bytes);
  if (data_ == nullptr) throw std::bad_alloc();
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

PageRegion::~PageRegion() {
  if (mapping_ != nullptr) {
    munmap(mapping_, mapping_size_);
  } else {
    std::free(data_);
  }
}

}  // namespace agate
