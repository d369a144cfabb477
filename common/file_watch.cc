#include "common/file_watch.h"

#include <sys/stat.h>

#include <cerrno>
#include <utility>

namespace agate {
namespace {

int64_t Nanos(const timespec& t) { return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec; }

}  // namespace

FileStamp StatFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return FileStamp{.error = errno};
  return FileStamp{.device = st.st_dev,
                   .inode = st.st_ino,
                   .size = st.st_size,
                   .mtime_ns = Nanos(st.st_mtim),
                   .ctime_ns = Nanos(st.st_ctim)};
}

FileWatch::FileWatch(std::vector<std::string> paths) : paths_(std::move(paths)) {
  loaded_ = polled_ = Stamps();
}

std::vector<FileStamp> FileWatch::Stamps() const {
  std::vector<FileStamp> stamps;
  stamps.reserve(paths_.size());
  for (const std::string& path : paths_) stamps.push_back(StatFile(path));
  return stamps;
}

bool FileWatch::Settled() {
  std::vector<FileStamp> now = Stamps();
  const bool settled = now == polled_ && now != loaded_;
  polled_ = std::move(now);
  return settled;
}

void FileWatch::Refresh() { loaded_ = polled_ = Stamps(); }

}  // namespace agate
