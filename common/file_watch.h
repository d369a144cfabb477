// File stamps and FileWatch: noticing that files changed, without reading them half-written.
//
// A FileStamp is a file's identity and change times (or the errno stat(2) failed with:
// ENOENT, the file is missing). FileWatch compares stamps between polls: a set of files is
// ready to reload once it differs from what was last loaded and then stayed the same for one
// more poll (a file still being written is not read, and editors that save by renaming a new file
// over the old one are seen too).
//
// FileWatch is thread-compatible.
//
// Example:
//   FileWatch watch({"server.pem", "server.key"});   // as they are now counts as loaded
//   ...every second: if (watch.Settled()) { Reload(); watch.Loaded(); }
#ifndef AGATE_COMMON_FILE_WATCH_H_
#define AGATE_COMMON_FILE_WATCH_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace agate {

struct FileStamp {
  int error = 0;
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;

  friend bool operator==(const FileStamp&, const FileStamp&) = default;
};

// StatFile returns path's FileStamp (following symlinks).
FileStamp StatFile(const std::string& path);

class FileWatch {
 public:
  // The files as they are now count as loaded.
  explicit FileWatch(std::vector<std::string> paths);

  // Settled stats the files and returns true when they differ from what was last loaded (or
  // reported) and equal what the previous call saw.
  bool Settled();
  // Loaded records the stamps the last Settled saw as loaded (after a reload, good or bad: a bad
  // file is reported once, not on every poll).
  void Loaded() { loaded_ = polled_; }
  // Refresh stats the files now and records them as loaded: call it before an unprompted reload
  // (SIGHUP) reads them.
  void Refresh();

 private:
  std::vector<FileStamp> Stamps() const;

  std::vector<std::string> paths_;
  std::vector<FileStamp> loaded_;
  std::vector<FileStamp> polled_;
};

}  // namespace agate

#endif  // AGATE_COMMON_FILE_WATCH_H_
