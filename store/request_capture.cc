#include "store/request_capture.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/proto_json.h"
#include "engine/redaction.h"
#include "spdlog/spdlog.h"

namespace agate::store {

absl::StatusOr<std::unique_ptr<RequestCapture>> RequestCapture::Open(const std::string& dir,
                                                                     uint64_t max_bytes) {
  if (max_bytes < 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("--capture-max-bytes: must be at least 1024, got ", max_bytes));
  }
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--capture-requests ", dir, ": cannot create the directory: ", error.message()));
  }
  std::string path = (std::filesystem::path(dir) / kFileName).string();
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int e = errno;
    return absl::ErrnoToStatus(e, absl::StrCat("--capture-requests: cannot open ", path));
  }
  struct stat st {};
  fstat(fd, &st);
  return std::unique_ptr<RequestCapture>(
      new RequestCapture(std::move(path), fd, static_cast<uint64_t>(st.st_size), max_bytes));
}

RequestCapture::RequestCapture(std::string path, int fd, uint64_t size, uint64_t max_bytes)
    : path_(std::move(path)), fd_(fd), max_bytes_(max_bytes), bytes_(size) {}

RequestCapture::~RequestCapture() { close(fd_); }

bool RequestCapture::Write(const engine::Request& request, const std::vector<std::string>& redact) {
  std::string line;
  if (redact.empty()) {
    line = ToJson(request);
  } else {
    engine::Request copy = request;
    engine::Redact(redact, &copy);
    line = ToJson(copy);
  }
  line += '\n';
  absl::MutexLock lock(&mu_);
  const uint64_t size = bytes_.load(std::memory_order_relaxed);
  if (!stopped_ && size + line.size() > max_bytes_) {
    stopped_ = true;
    spdlog::warn(
        "request capture {} stopped: it holds {} bytes and the next request would pass "
        "--capture-max-bytes {}; later requests are not captured",
        path_, size, max_bytes_);
  }
  if (stopped_) {
    skipped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  const ssize_t n = write(fd_, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) {
    const int e = errno;
    stopped_ = true;
    skipped_.fetch_add(1, std::memory_order_relaxed);
    spdlog::error("request capture {} stopped: write failed: {}", path_,
                  n < 0 ? std::strerror(e) : "short write");
    return false;
  }
  bytes_.store(size + line.size(), std::memory_order_relaxed);
  written_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace agate::store
