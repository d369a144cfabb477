#include "store/decision_log.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <future>
#include <iterator>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/sha256.h"
#include "spdlog/spdlog.h"

namespace agate::store {
namespace {

constexpr absl::string_view kFilePrefix = "decisions-";
constexpr absl::string_view kFileSuffix = ".jsonl";
constexpr absl::string_view kGenesis =
    "0000000000000000000000000000000000000000000000000000000000000000";
constexpr absl::string_view kSeqPrefix = "{\"seq\":";
constexpr absl::string_view kPrevKey = ",\"prev\":\"";
constexpr absl::string_view kHashKey = "\",\"hash\":\"";
// The fixed-size end of every line: ,"prev":"<64 hex>","hash":"<64 hex>"}
constexpr size_t kSuffixSize = kPrevKey.size() + 64 + kHashKey.size() + 64 + 2;
// The hash covers the line up to and including the closing quote of prev.
constexpr size_t kUnhashedSize = kHashKey.size() - 1 + 64 + 2;

// A batch is written in segments of about this size (each one write(2), committed on success).
constexpr size_t kSegmentBytes = 1 << 20;

// AppendRecord appends the line for (seq, body) chained to *head, and sets *head to its hash.
void AppendRecord(absl::string_view body, uint64_t seq, std::string* head, std::string* out,
                  Sha256& hasher) {
  const size_t start = out->size();
  out->append(kSeqPrefix.data(), kSeqPrefix.size());
  absl::StrAppend(out, seq);
  if (!body.empty()) {
    out->push_back(',');
    out->append(body.data(), body.size());
  }
  out->append(kPrevKey.data(), kPrevKey.size());
  out->append(*head);
  out->push_back('"');
  head->clear();
  hasher.HexAppend(absl::string_view(*out).substr(start), head);
  out->append(",\"hash\":\"");
  out->append(*head);
  out->append("\"}\n");
}

bool IsLowerHex(absl::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f'); });
}

// Record is a parsed line (views into it).
struct Record {
  uint64_t seq = 0;
  absl::string_view prev;
  absl::string_view hash;
  absl::string_view hashed;  // the bytes the hash covers
};

// ParseRecord checks the line's frame ({"seq":N,...,"prev":"..","hash":".."}); the body is not
// parsed (the hash covers it).
absl::StatusOr<Record> ParseRecord(absl::string_view line) {
  const auto invalid = [](absl::string_view why) {
    return absl::DataLossError(
        absl::StrCat("not a decision record (", why,
                     "); want {\"seq\":N,...,\"prev\":\"<64 hex>\",\"hash\":\"<64 hex>\"}"));
  };
  if (!absl::StartsWith(line, kSeqPrefix)) return invalid("no {\"seq\": at the start");
  if (line.size() < kSeqPrefix.size() + 1 + kSuffixSize) return invalid("too short");
  const absl::string_view suffix = line.substr(line.size() - kSuffixSize);
  if (!absl::StartsWith(suffix, kPrevKey) ||
      suffix.substr(kPrevKey.size() + 64, kHashKey.size()) != kHashKey ||
      !absl::EndsWith(suffix, "\"}")) {
    return invalid("no \"prev\" and \"hash\" at the end");
  }
  Record r;
  r.prev = suffix.substr(kPrevKey.size(), 64);
  r.hash = suffix.substr(kPrevKey.size() + 64 + kHashKey.size(), 64);
  if (!IsLowerHex(r.prev) || !IsLowerHex(r.hash)) return invalid("prev or hash is not 64 hex");
  const absl::string_view middle =
      line.substr(kSeqPrefix.size(), line.size() - kSuffixSize - kSeqPrefix.size());  // N[,body]
  const size_t digits = std::min(middle.find(','), middle.size());
  if (digits == 0 || digits > 20 ||
      !std::all_of(middle.begin(), middle.begin() + digits, absl::ascii_isdigit) ||
      !absl::SimpleAtoi(middle.substr(0, digits), &r.seq) || r.seq == 0) {
    return invalid("seq is not a positive integer");
  }
  r.hashed = line.substr(0, line.size() - kUnhashedSize);
  return r;
}

// CheckedRecord parses line and checks its hash.
absl::StatusOr<Record> CheckedRecord(absl::string_view line, Sha256& hasher) {
  absl::StatusOr<Record> r = ParseRecord(line);
  if (!r.ok()) return r;
  std::string computed;
  hasher.HexAppend(r->hashed, &computed);
  if (computed != r->hash) {
    return absl::DataLossError(
        absl::StrCat("hash mismatch: the record was altered (its bytes hash to ", computed,
                     ", the line says ", r->hash, ")"));
  }
  return r;
}

struct LogFile {
  uint64_t index;
  std::string path;
  std::string name;
};

std::string JoinDir(absl::string_view dir, absl::string_view name) {
  absl::string_view d = dir;
  while (d.size() > 1 && absl::EndsWith(d, "/")) d.remove_suffix(1);
  return d == "/" ? absl::StrCat("/", name) : absl::StrCat(d, "/", name);
}

std::string FileName(uint64_t index) {
  return absl::StrFormat("%s%06d%s", kFilePrefix, index, kFileSuffix);
}

// ListLogFiles returns dir's decisions-N.jsonl files by number.
absl::StatusOr<std::vector<LogFile>> ListLogFiles(absl::string_view dir) {
  std::error_code ec;
  std::filesystem::directory_iterator it(std::filesystem::path(std::string(dir)), ec);
  if (ec) return absl::ErrnoToStatus(ec.value(), absl::StrCat("decision log: ", dir));
  std::vector<LogFile> files;
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    absl::string_view number = name;
    uint64_t index = 0;
    if (absl::ConsumePrefix(&number, kFilePrefix) && absl::ConsumeSuffix(&number, kFileSuffix) &&
        !number.empty() && std::all_of(number.begin(), number.end(), absl::ascii_isdigit) &&
        absl::SimpleAtoi(number, &index) && index > 0) {
      files.push_back({index, JoinDir(dir, name), name});
    }
  }
  if (ec) return absl::ErrnoToStatus(ec.value(), absl::StrCat("decision log: ", dir));
  std::sort(files.begin(), files.end(),
            [](const LogFile& a, const LogFile& b) { return a.index < b.index; });
  return files;
}

// Fd closes a file descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Tail is the end of a log file: where its last complete line ends and that line.
struct Tail {
  uint64_t size = 0;          // file size
  uint64_t complete_end = 0;  // offset just past the last '\n' (0: none)
  std::string last_line;      // the last complete line, without '\n'; empty if none
};

// ReadTail reads backwards from the end of path, in growing windows, just far enough to find
// the last complete line.
absl::StatusOr<Tail> ReadTail(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return absl::ErrnoToStatus(errno, absl::StrCat("decision log: open ", path));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("decision log: stat ", path));
  }
  Tail tail;
  tail.size = static_cast<uint64_t>(st.st_size);
  uint64_t window = 64 << 10;
  for (;;) {
    const uint64_t from = tail.size > window ? tail.size - window : 0;
    std::string buf(tail.size - from, '\0');
    size_t got = 0;
    while (got < buf.size()) {
      const ssize_t n = ::pread(fd.get(), buf.data() + got, buf.size() - got, from + got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return absl::ErrnoToStatus(errno, absl::StrCat("decision log: read ", path));
      if (n == 0) break;  // shrank meanwhile
      got += static_cast<size_t>(n);
    }
    buf.resize(got);
    const size_t end = buf.rfind('\n');
    if (end == std::string::npos) {
      if (from == 0) return tail;  // no complete line at all
      window *= 4;
      continue;
    }
    const size_t before = end == 0 ? std::string::npos : buf.rfind('\n', end - 1);
    if (before == std::string::npos && from > 0) {
      window *= 4;
      continue;
    }
    const size_t start = before == std::string::npos ? 0 : before + 1;
    tail.complete_end = from + end + 1;
    tail.last_line = buf.substr(start, end - start);
    return tail;
  }
}

// LineReader reads a file line by line in large blocks.
class LineReader {
 public:
  LineReader(int fd, const std::string& path) : fd_(fd), path_(path) {}

  // Next sets *line (without '\n', valid until the next call) and *terminated (false for a last
  // line without '\n'). Returns false at the end of the file.
  absl::StatusOr<bool> Next(absl::string_view* line, bool* terminated) {
    for (;;) {
      const size_t nl = buf_.find('\n', pos_);
      if (nl != std::string::npos) {
        *line = absl::string_view(buf_).substr(pos_, nl - pos_);
        *terminated = true;
        pos_ = nl + 1;
        return true;
      }
      if (eof_) {
        if (pos_ == buf_.size()) return false;
        *line = absl::string_view(buf_).substr(pos_);
        *terminated = false;
        pos_ = buf_.size();
        return true;
      }
      buf_.erase(0, pos_);
      pos_ = 0;
      const size_t old = buf_.size();
      buf_.resize(old + (1 << 20));
      ssize_t n;
      do {
        n = ::read(fd_, buf_.data() + old, buf_.size() - old);
      } while (n < 0 && errno == EINTR);
      if (n < 0) return absl::ErrnoToStatus(errno, absl::StrCat("decision log: read ", path_));
      buf_.resize(old + static_cast<size_t>(n));
      eof_ = n == 0;
    }
  }

 private:
  int fd_;
  const std::string& path_;
  std::string buf_;
  size_t pos_ = 0;
  bool eof_ = false;
};

}  // namespace

// --- DecisionLog -----------------------------------------------------------------------------

DecisionLog::DecisionLog(DecisionLogOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<DecisionLog>> DecisionLog::Open(DecisionLogOptions options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("decision log: dir is required");
  if (options.rotate_bytes == 0 || options.max_queued_records == 0) {
    return absl::InvalidArgumentError(
        "decision log: rotate_bytes and max_queued_records must be positive");
  }
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    return absl::ErrnoToStatus(ec.value(),
                               absl::StrCat("decision log: cannot create directory ", options.dir));
  }
  std::unique_ptr<DecisionLog> log(new DecisionLog(std::move(options)));
  const std::string& dir = log->options_.dir;
  log->dir_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (log->dir_fd_ < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("decision log: open directory ", dir));
  }
  if (::flock(log->dir_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat(
          "decision log: ", dir, " is in use by another decision log (another agate-server?)"));
    }
    return absl::ErrnoToStatus(errno, absl::StrCat("decision log: lock ", dir));
  }
  if (absl::Status s = log->Recover(); !s.ok()) return s;
  std::promise<void> started;
  log->writer_ = std::thread([raw = log.get(), &started] {
    pthread_setname_np(pthread_self(), "agate-log");
    // The writer yields to request threads: at nice 19 its wake-ups do not preempt them (a
    // preempted request thread can hold one of gRPC's locks; measured on one core at
    // saturation: 57-60k -> 65-67k req/s, every record written; docs/perf.md). When it falls
    // behind, appending threads write (Append); sync appends and Flush write on their own thread.
    setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 19);
    started.set_value();
    raw->Run();
  });
  started.get_future().wait();  // named and reniced before Open returns
  return log;
}

absl::Status DecisionLog::Recover() {
  absl::StatusOr<std::vector<LogFile>> files = ListLogFiles(options_.dir);
  if (!files.ok()) return files.status();
  seq_ = 0;
  head_ = std::string(kGenesis);
  if (files->empty()) return OpenFile(1);

  Sha256 hasher;
  bool found = false;
  uint64_t newest_size = 0;
  // The newest file normally holds the head; if it is empty, an older one does.
  for (auto f = files->rbegin(); f != files->rend() && !found; ++f) {
    absl::StatusOr<Tail> tail = ReadTail(f->path);
    if (!tail.ok()) return tail.status();
    const bool newest = f == files->rbegin();
    if (tail->complete_end < tail->size) {
      if (!newest) {
        return absl::DataLossError(absl::StrCat(
            f->path, ": last line is not a decision record: no trailing newline in an older file"));
      }
      spdlog::warn("decision log: {}: truncating a torn last line ({} bytes without a newline)",
                   f->path, tail->size - tail->complete_end);
      if (::truncate(f->path.c_str(), static_cast<off_t>(tail->complete_end)) != 0) {
        return absl::ErrnoToStatus(errno, absl::StrCat("decision log: truncate ", f->path));
      }
      tail->size = tail->complete_end;
    }
    if (newest) newest_size = tail->size;
    if (tail->complete_end == 0) continue;  // empty
    absl::StatusOr<Record> r = CheckedRecord(tail->last_line, hasher);
    if (!r.ok()) {
      return absl::DataLossError(
          absl::StrCat(f->path, ": last line is not a decision record: ", r.status().message()));
    }
    seq_ = r->seq;
    head_ = std::string(r->hash);
    found = true;
  }
  written_seq_ = seq_;
  const uint64_t newest_index = files->back().index;
  return OpenFile(newest_size >= options_.rotate_bytes ? newest_index + 1 : newest_index);
}

DecisionLog::~DecisionLog() {
  if (writer_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    work_cv_.notify_one();
    writer_.join();
  }
  CloseFile();
  if (dir_fd_ >= 0) ::close(dir_fd_);  // releases the lock
}

std::string DecisionLog::FilePath(uint64_t index) const {
  return JoinDir(options_.dir, FileName(index));
}

absl::Status DecisionLog::OpenFile(uint64_t index) {
  const std::string path = FilePath(index);
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("decision log: open ", path));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int error = errno;
    ::close(fd);
    return absl::ErrnoToStatus(error, absl::StrCat("decision log: stat ", path));
  }
  if (options_.fsync && ::fsync(dir_fd_) != 0) {
    const int error = errno;
    ::close(fd);
    return absl::ErrnoToStatus(error, absl::StrCat("decision log: fsync ", options_.dir));
  }
  CloseFile();
  fd_ = fd;
  file_index_ = index;
  file_bytes_ = static_cast<uint64_t>(st.st_size);
  files_.fetch_add(1, std::memory_order_relaxed);
  // Retention: the newest max_files files stay; older ones go, oldest last so that the files
  // left are always a contiguous tail of the chain (VerifyLog anchors at the first of them).
  if (options_.max_files > 0 && index > options_.max_files) {
    for (uint64_t old = index - options_.max_files; old >= 1; --old) {
      const std::string old_path = FilePath(old);
      if (::unlink(old_path.c_str()) != 0) {
        if (errno != ENOENT) {
          spdlog::warn("decision log: cannot remove {} (retention): {}", old_path,
                       std::strerror(errno));
        }
        break;
      }
    }
  }
  return absl::OkStatus();
}

void DecisionLog::CloseFile() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

absl::Status DecisionLog::Append(absl::string_view body, bool sync) {
  if (body.find('\n') != absl::string_view::npos) {
    return absl::InvalidArgumentError("decision log: a record body must not contain a newline");
  }
  Sha256& hasher = ThreadSha256();
  uint64_t seq;
  bool write_here;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t waiting = seq_ - written_seq_;
    if (waiting >= options_.max_queued_records) {
      ++dropped_;
      return absl::ResourceExhaustedError(
          absl::StrCat("decision log: record dropped: ", waiting,
                       " records are waiting to be written (max_queued_records)",
                       last_error_.ok() ? "" : absl::StrCat("; ", last_error_.message())));
    }
    AppendRecord(body, ++seq_, &head_, &pending_, hasher);
    seq = seq_;
    // Past kInlineWriteRecords the writer has fallen behind (it yields to request threads):
    // this caller writes, unless writes are failing (then the writer retries on its own).
    write_here = sync || (waiting + 1 >= kInlineWriteRecords && last_error_.ok());
    if (!write_here && writer_idle_) {
      writer_idle_ = false;
      work_cv_.notify_one();
    }
  }
  if (!write_here) return absl::OkStatus();
  return WriteThrough(seq);
}

absl::Status DecisionLog::Flush() {
  uint64_t seq;
  {
    std::lock_guard<std::mutex> lock(mu_);
    seq = seq_;
  }
  return WriteThrough(seq);
}

absl::Status DecisionLog::WriteThrough(uint64_t seq) {
  std::lock_guard<std::mutex> write_lock(write_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (written_seq_ >= seq) return absl::OkStatus();  // another thread wrote it meanwhile
  }
  WritePendingLocked();
  std::lock_guard<std::mutex> lock(mu_);
  return written_seq_ >= seq ? absl::OkStatus() : last_error_;
}

void DecisionLog::WritePendingLocked() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // What failed before goes first; the buffers swap, so neither allocates once grown.
    if (batch_.empty()) {
      batch_.swap(pending_);
    } else {
      batch_.append(pending_);
    }
    pending_.clear();
  }
  if (!batch_.empty()) WriteBatch();
}

DecisionLog::Stats DecisionLog::stats() const {
  Stats s;
  s.records = records_.load(std::memory_order_relaxed);
  s.bytes = bytes_.load(std::memory_order_relaxed);
  s.files = files_.load(std::memory_order_relaxed);
  s.write_errors = write_errors_.load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mu_);
  s.dropped = dropped_;
  s.queued = seq_ - written_seq_;
  return s;
}

void DecisionLog::Run() {
  const auto interval = absl::ToChronoNanoseconds(
      std::clamp(options_.flush_interval, absl::ZeroDuration(), absl::Hours(24)));
  auto next_write = std::chrono::steady_clock::now() + interval;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Gather records until the next write is due or the log closes.
      work_cv_.wait_until(lock, next_write, [&] { return stop_; });
      if (pending_.empty() && !retry_) {
        if (stop_) return;
        // A whole interval without a record: sleep until an Append wakes us, then gather for one
        // interval. While records keep coming the writer is never idle, so no Append wakes it.
        writer_idle_ = true;
        work_cv_.wait(lock, [&] { return stop_ || !pending_.empty(); });
        writer_idle_ = false;
        next_write = std::chrono::steady_clock::now() + interval;
        continue;
      }
    }
    next_write = std::chrono::steady_clock::now() + interval;
    bool stopping;
    {
      std::lock_guard<std::mutex> write_lock(write_mu_);
      WritePendingLocked();
      std::lock_guard<std::mutex> lock(mu_);
      stopping = stop_;
      if (stopping && retry_) {
        spdlog::error("decision log: {} records could not be written before shutdown: {}",
                      seq_ - written_seq_, last_error_.ToString());
      }
    }
    if (stopping) return;
  }
}

void DecisionLog::WriteBatch() {
  size_t pos = 0;  // bytes of batch_ written so far
  absl::Status status;
  while (pos < batch_.size()) {
    if (fd_ < 0) {
      status = OpenFile(file_index_ + 1);
      if (!status.ok()) break;
    }
    // A segment ends with the line that reaches kSegmentBytes or fills the file (a file ends
    // after the record that took it past rotate_bytes; file_bytes_ < rotate_bytes here).
    const size_t room = std::min<uint64_t>(kSegmentBytes, options_.rotate_bytes - file_bytes_);
    size_t end = batch_.size();
    if (end - pos > room) end = batch_.find('\n', pos + room - 1) + 1;
    const absl::string_view segment = absl::string_view(batch_).substr(pos, end - pos);
    status = WriteSegment(segment);
    if (!status.ok()) break;
    const auto records = static_cast<uint64_t>(std::count(segment.begin(), segment.end(), '\n'));
    records_.fetch_add(records, std::memory_order_relaxed);
    bytes_.fetch_add(segment.size(), std::memory_order_relaxed);
    pos = end;
    if (file_bytes_ >= options_.rotate_bytes) CloseFile();
    std::lock_guard<std::mutex> lock(mu_);
    written_seq_ += records;
  }
  batch_.erase(0, pos);  // what failed stays, in order, for the next attempt
  if (!status.ok()) write_errors_.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_error_ = status;
    retry_ = !batch_.empty();
  }
  LogProblems(status);
}

absl::Status DecisionLog::WriteSegment(absl::string_view bytes) {
  size_t off = 0;
  int error = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = n < 0 ? errno : EIO;
      break;
    }
    off += static_cast<size_t>(n);
  }
  if (error == 0 && options_.fsync && ::fdatasync(fd_) != 0) error = errno;
  if (error == 0) {
    file_bytes_ += bytes.size();
    return absl::OkStatus();
  }
  const std::string path = FilePath(file_index_);
  // Take back whatever part of the segment reached the file: files hold whole records only.
  if (::ftruncate(fd_, static_cast<off_t>(file_bytes_)) != 0) {
    spdlog::error(
        "decision log: {}: cannot truncate a partial write ({}); continuing in a new file, "
        "verify-log will report this one's last line",
        path, std::error_code(errno, std::system_category()).message());
    CloseFile();
  }
  return absl::ErrnoToStatus(error, absl::StrCat("decision log: write ", path));
}

void DecisionLog::LogProblems(const absl::Status& write_error) {
  const absl::Time now = absl::Now();
  if (!write_error.ok()) {
    ++errors_since_log_;
    failing_ = true;
    if (now - last_error_log_ >= absl::Seconds(1)) {
      spdlog::error("{} (failed attempts since the last report: {}; retrying every {})",
                    std::string(write_error.message()), errors_since_log_,
                    absl::FormatDuration(options_.flush_interval));
      last_error_log_ = now;
      errors_since_log_ = 0;
    }
  } else if (failing_) {
    spdlog::info("decision log: writing again{}",
                 errors_since_log_ == 0
                     ? ""
                     : absl::StrCat(" (", errors_since_log_, " more failed attempts)"));
    failing_ = false;
    errors_since_log_ = 0;
  }
  uint64_t dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dropped = dropped_;
  }
  if (dropped > dropped_logged_ && now - last_drop_log_ >= absl::Seconds(1)) {
    spdlog::error("decision log: dropped {} records: {} were waiting to be written ({} in all)",
                  dropped - dropped_logged_, options_.max_queued_records, dropped);
    last_drop_log_ = now;
    dropped_logged_ = dropped;
  }
}

// --- ReadRecentRecords -----------------------------------------------------------------------

absl::Status ReadRecentRecords(absl::string_view dir,
                               absl::FunctionRef<bool(absl::string_view line)> visit) {
  absl::StatusOr<std::vector<LogFile>> files = ListLogFiles(dir);
  if (!files.ok()) return files.status();
  for (auto f = files->rbegin(); f != files->rend(); ++f) {
    Fd fd(::open(f->path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0)
      return absl::ErrnoToStatus(errno, absl::StrCat("decision log: open ", f->path));
    std::vector<std::string> lines;
    LineReader reader(fd.get(), f->path);
    absl::string_view line;
    bool terminated;
    for (;;) {
      absl::StatusOr<bool> more = reader.Next(&line, &terminated);
      if (!more.ok()) return more.status();
      if (!*more) break;
      if (terminated && !line.empty()) lines.emplace_back(line);
    }
    for (auto l = lines.rbegin(); l != lines.rend(); ++l) {
      if (!visit(*l)) return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

// --- VerifyLog -------------------------------------------------------------------------------

absl::StatusOr<VerifyResult> VerifyLog(absl::string_view dir) {
  absl::StatusOr<std::vector<LogFile>> files = ListLogFiles(dir);
  if (!files.ok()) return files.status();
  if (files->empty()) {
    return absl::NotFoundError(
        absl::StrCat("decision log: no ", kFilePrefix, "NNNNNN", kFileSuffix, " files in ", dir));
  }
  Sha256 hasher;
  VerifyResult result;
  std::string prev_where;  // FILE:LINE of the previous record
  for (const LogFile& f : *files) {
    Fd fd(::open(f.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("decision log: open ", f.path));
    }
    ++result.files;
    LineReader reader(fd.get(), f.path);
    absl::string_view line;
    bool terminated;
    for (uint64_t n = 1;; ++n) {
      absl::StatusOr<bool> more = reader.Next(&line, &terminated);
      if (!more.ok()) return more.status();
      if (!*more) break;
      const std::string where = absl::StrCat(f.path, ":", n);
      const auto broken = [&](absl::string_view message) {
        return absl::DataLossError(absl::StrCat(where, ": ", message));
      };
      if (!terminated) {
        return broken(
            "torn last line (no trailing newline): a write was cut short; the next start of the "
            "log truncates it");
      }
      if (line.empty()) return broken("empty line");
      absl::StatusOr<Record> r = CheckedRecord(line, hasher);
      if (!r.ok()) return broken(r.status().message());
      if (result.records == 0) {
        if (r->prev == kGenesis) {
          if (r->seq != 1) {
            return broken(absl::StrCat("seq ", r->seq, " starts the chain; want 1"));
          }
        } else if (f.index == 1) {
          return broken(absl::StrCat("the first record of ", f.name,
                                     " must start the chain (prev 0000...); seq ", r->seq,
                                     " follows a record that was removed"));
        } else {
          result.anchor = absl::StrCat(where, " (seq ", r->seq, ")");
        }
      } else if (r->seq != result.last_seq + 1) {
        return broken(absl::StrCat("seq ", r->seq, " follows seq ", result.last_seq, " (",
                                   prev_where, "): a record is missing or out of order"));
      } else if (r->prev != result.head) {
        return broken(absl::StrCat("prev does not match the hash of the previous record (",
                                   prev_where, "): a record was replaced"));
      }
      ++result.records;
      result.last_seq = r->seq;
      result.head = std::string(r->hash);
      prev_where = where;
    }
  }
  return result;
}

}  // namespace agate::store
