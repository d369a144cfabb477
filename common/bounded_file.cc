#include "common/bounded_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace agate {

std::string MiB(size_t bytes) {
  if (bytes == 0 || bytes % (size_t{1} << 20) != 0) return absl::StrCat(bytes, " bytes");
  return absl::StrCat(bytes >> 20, " MiB");
}

absl::StatusOr<std::string> ReadBoundedFile(const std::string& path, size_t max_bytes) {
  auto fail_errno = [](int error) { return absl::ErrnoToStatus(error, "cannot read"); };
  auto too_large = [&](absl::string_view size) {
    return absl::OutOfRangeError(absl::StrCat("larger than ", MiB(max_bytes), size));
  };

  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail_errno(errno);
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};

  struct stat st;
  if (::fstat(fd, &st) != 0) return fail_errno(errno);
  if (S_ISDIR(st.st_mode)) return fail_errno(EISDIR);
  if (st.st_size > static_cast<off_t>(max_bytes)) {
    return too_large(absl::StrCat(" (", st.st_size, " bytes)"));
  }

  // Room for the size the file reports and the byte that tells it grew past the limit; more
  // (doubling, never past max_bytes + 1) when it reports less than it holds (a pipe, /proc).
  // Zero-filling max_bytes up front would cost a large limit on every small file.
  std::string text(std::min<size_t>(std::max<off_t>(st.st_size, 4095), max_bytes) + 1, '\0');
  size_t size = 0;
  for (;;) {
    if (size == text.size()) {
      if (size > max_bytes) break;
      text.resize(std::min(max_bytes + 1, text.size() * 2));
    }
    const ssize_t n = ::read(fd, text.data() + size, text.size() - size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno(errno);
    }
    if (n == 0) break;
    size += static_cast<size_t>(n);
  }
  if (size > max_bytes) return too_large("");
  text.resize(size);
  return text;
}

}  // namespace agate
