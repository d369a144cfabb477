#include "common/bounded_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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

  std::string text(max_bytes + 1, '\0');
  size_t size = 0;
  while (size < text.size()) {
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
