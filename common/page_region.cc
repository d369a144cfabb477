#include "common/page_region.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <new>

namespace agate {

PageRegion::PageRegion(size_t bytes) : size_(bytes) {
  if (bytes == 0) return;
  if (bytes < kHugePage) {  // a huge page would be mostly unused: plain zeroed memory
    data_ = std::calloc(1, bytes);
    if (data_ == nullptr) throw std::bad_alloc();
    return;
  }
  // Reserve a huge page more than asked, so that the region can start on a huge page boundary.
  const size_t length = (bytes + kHugePage - 1) / kHugePage * kHugePage + kHugePage;
  void* mapping = mmap(nullptr, length, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mapping != MAP_FAILED) {
    mapping_ = mapping;
    mapping_size_ = length;
    const uintptr_t start = reinterpret_cast<uintptr_t>(mapping);
    data_ = reinterpret_cast<void*>((start + kHugePage - 1) / kHugePage * kHugePage);
    advised_ = madvise(data_, length - kHugePage, MADV_HUGEPAGE) == 0;
    return;
  }
  data_ = std::calloc(1, bytes);
  if (data_ == nullptr) throw std::bad_alloc();
}

PageRegion::~PageRegion() {
  if (mapping_ != nullptr) {
    munmap(mapping_, mapping_size_);
  } else {
    std::free(data_);
  }
}

}  // namespace agate
