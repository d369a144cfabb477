// cold_pages: what touching memory left alone costs on this machine (docs/perf.md, "4 KiB pages
// that go cold"). Allocates MB mebibytes, writes every page, then three times: sleeps SECONDS and
// times one read of each 4 KiB page. With --huge the memory is 2 MiB-aligned and advised
// MADV_HUGEPAGE (transparent huge pages), as agate's idempotency cache is.
//
//   build/bench/cold_pages 8 1           # 4 KiB pages, left alone 1 s
//   build/bench/cold_pages 8 1 --huge
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: cold_pages MB SECONDS [--huge]\n");
    return 2;
  }
  const size_t bytes = std::strtoul(argv[1], nullptr, 10) << 20;
  const double seconds = std::strtod(argv[2], nullptr);
  const bool huge = argc > 3 && std::string(argv[3]) == "--huge";
  constexpr size_t kHuge = size_t{2} << 20;
  auto* p = static_cast<char*>(std::aligned_alloc(kHuge, (bytes + kHuge - 1) / kHuge * kHuge));
  if (p == nullptr || bytes == 0) {
    std::fprintf(stderr, "cold_pages: cannot allocate %s MB\n", argv[1]);
    return 1;
  }
  if (huge && madvise(p, bytes, MADV_HUGEPAGE) != 0) std::perror("cold_pages: madvise");
  for (size_t i = 0; i < bytes; i += sizeof(uint64_t)) {
    const uint64_t v = i * 0x9e3779b97f4a7c15ull;  // distinct contents: nothing to deduplicate
    std::memcpy(p + i, &v, sizeof(v));
  }
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    std::vector<int64_t> ns;
    volatile char sink = 0;
    for (size_t off = 0; off < bytes; off += 4096) {
      const auto t0 = std::chrono::steady_clock::now();
      sink = sink + p[off];
      ns.push_back((std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ns.begin(), ns.end());
    const auto slow = std::count_if(ns.begin(), ns.end(), [](int64_t n) { return n > 10'000; });
    std::printf(
        "cold_pages: %zu MB, %s pages, left alone %.1f s: %zu touches, p50 %lld ns, p99 %lld ns, "
        "max %lld ns, slower than 10 us: %lld\n",
        bytes >> 20, huge ? "2 MiB" : "4 KiB", seconds, ns.size(),
        static_cast<long long>(ns[ns.size() / 2]), static_cast<long long>(ns[ns.size() * 99 / 100]),
        static_cast<long long>(ns.back()), static_cast<long long>(slow));
  }
  std::free(p);
  return 0;
}
