// DecisionLog: every decision agate makes, one JSON line each, in append-only files that form a
// hash chain, so that editing, removing or reordering a record is detected (VerifyLog, and
// `agate verify-log DIR` on the command line).
//
// Files: DIR/decisions-000001.jsonl, decisions-000002.jsonl, ... A file that has reached
// rotate_bytes is closed and the next number started; nothing is ever rewritten. One record a
// line:
//
//   {"seq":N,<body>,"prev":"<64 hex>","hash":"<64 hex>"}
//
//   seq   1, 2, 3, ... across files and restarts (never reset);
//   body  what the caller appended (DecisionRecordBody's fields, see decision_record.h);
//   prev  the previous record's hash; 64 zeros for the very first record;
//   hash  lowercase hex SHA-256 of the line's bytes up to, not including, `,"hash":`: it covers
//         seq, body and prev, so every record seals its predecessor.
//
// The chain detects a changed byte, a removed or reordered record and a removed middle file.
// Someone able to rewrite the whole directory can rewrite the whole chain too; when that matters,
// copy the head hash (VerifyResult::head) somewhere else from time to time.
//
// Thread safety: DecisionLog is thread-safe. Append numbers, chains and hashes its record on the
// caller's thread, under a short lock (the chain is one sequence), and adds the finished line to
// an in-memory buffer, allocating nothing once the buffer has grown. An async Append does no I/O:
// a writer thread writes the buffer at the latest every flush_interval (one write(2) per batch).
// The writer runs at nice 19, so that its wake-ups never preempt a request thread (on a busy core
// that costs far more than the write itself: see docs/perf.md), and while records keep coming it
// runs on its timer alone: an Append wakes it only after an idle interval.
// A sync Append or a Flush writes on the caller's thread; so does an Append that finds
// kInlineWriteRecords waiting (the writer has fallen behind), so nothing piles up while request
// threads keep the CPU busy. Two DecisionLogs (in one process or two) cannot open the same
// directory: it is locked (flock) while open.
//
// Errors: Open returns a status naming the directory or file (not creatable, not writable, locked,
// unreadable, a newest file whose last line is not a record). A write failure (disk full, I/O
// error) never crashes and never drops a numbered record: records stay queued, the writer retries
// every flush_interval, each failed attempt is counted in stats().write_errors and logged with
// spdlog (at most once a second), and a sync Append or a Flush returns the error. While
// max_queued_records wait, a new record is refused before it is numbered (Append returns
// RESOURCE_EXHAUSTED, stats().dropped counts it), so the chain of what is written stays intact.
//
// Example:
//   ASSIGN_OR_RETURN(std::unique_ptr<DecisionLog> log,
//                    DecisionLog::Open({.dir = "/var/lib/agate/decisions"}));
//   log->Append(R"("request_id":"r1","verdict":"ALLOW")", /*sync=*/false).IgnoreError();
//   RETURN_IF_ERROR(log->Append(R"("request_id":"r2","verdict":"DENY")", /*sync=*/true));
//   ...
//   absl::StatusOr<VerifyResult> verified = VerifyLog("/var/lib/agate/decisions");
#ifndef AGATE_STORE_DECISION_LOG_H_
#define AGATE_STORE_DECISION_LOG_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace agate::store {

struct DecisionLogOptions {
  // The directory of the log files; created if missing (like mkdir -p).
  std::string dir;
  // A file that has reached this size is closed and a new one started. A record is never split:
  // a file ends after the record that took it past the limit.
  size_t rotate_bytes = 64 << 20;
  // An async Append is written at the latest this long after it was queued.
  absl::Duration flush_interval = absl::Milliseconds(20);
  // Files kept at most (0: all). When a new file is started, the oldest beyond this many are
  // removed; VerifyLog then anchors the chain at the first remaining record.
  uint64_t max_files = 0;
  // fdatasync after each write, and fsync of the directory after creating a file (power-loss
  // durability); off, a record survives a crash of agate but not of the machine.
  bool fsync = false;
  // How many records may wait to be written (while writes fail); past it new records are
  // refused and counted in stats().dropped.
  size_t max_queued_records = 100'000;
};

class DecisionLog {
 public:
  // An async Append that finds this many records not yet written writes them itself.
  static constexpr uint64_t kInlineWriteRecords = 16384;

  // Open locks options.dir (creating it if needed) and recovers the chain head (last seq and
  // hash) from the newest file, or from an older one when the newest is empty. A torn last line (a
  // crash cut a write: no trailing '\n') is truncated away with a warning. Appends continue the
  // newest file, or start the next one if it has reached rotate_bytes.
  // Errors: INVALID_ARGUMENT for an empty dir or zero rotate_bytes/max_queued_records; the errno
  // status of a directory that cannot be created or a file that cannot be read or opened for
  // appending; FAILED_PRECONDITION when another DecisionLog holds the directory; DATA_LOSS when
  // the newest file's last line is not a valid record ("FILE: last line is not a decision
  // record: ...").
  static absl::StatusOr<std::unique_ptr<DecisionLog>> Open(DecisionLogOptions options);

  // ~DecisionLog writes everything queued (one attempt; what cannot be written is logged as
  // lost) and stops the writer thread. No Append or Flush may run concurrently with it.
  ~DecisionLog();

  DecisionLog(const DecisionLog&) = delete;
  DecisionLog& operator=(const DecisionLog&) = delete;

  // Append adds one record. body is the inside of a JSON object without its braces, e.g.
  // "\"verdict\":\"ALLOW\",\"request_id\":\"r1\"" (it is written as given, not checked for JSON).
  // The record is numbered, chained and hashed before Append returns. sync=false: returns without
  // I/O; the writer thread writes the record within flush_interval. sync=true: returns after this
  // record and every earlier one are written (write(2), and fdatasync if options.fsync).
  // Errors: INVALID_ARGUMENT if body contains a newline (records are lines); RESOURCE_EXHAUSTED
  // if max_queued_records are waiting (the record is dropped and counted, not numbered).
  // sync=true only: the write error (e.g. RESOURCE_EXHAUSTED "...: No space left on device");
  // the record stays queued and is retried, so it may still be written later.
  absl::Status Append(absl::string_view body, bool sync);

  // Flush returns once every record appended before the call is written. Errors as for a sync
  // Append.
  absl::Status Flush();

  struct Stats {
    uint64_t records = 0;       // records written since Open
    uint64_t bytes = 0;         // bytes written since Open
    uint64_t files = 0;         // files written to since Open (the reopened newest one counts)
    uint64_t write_errors = 0;  // failed write attempts (each one is retried)
    uint64_t dropped = 0;       // records dropped because max_queued_records were waiting
    uint64_t queued = 0;        // records not written yet (waiting or being written)
  };
  // stats returns the counters; thread-safe.
  Stats stats() const;
  // dir returns the directory of the log files.
  const std::string& dir() const { return options_.dir; }

 private:
  explicit DecisionLog(DecisionLogOptions options);
  absl::Status Recover();
  void Run();
  // WriteBatch writes batch_ in segments (one write(2) each, committed on success) and keeps what
  // failed in batch_ for the next attempt (write_mu_ held).
  void WriteBatch();
  absl::Status WriteSegment(absl::string_view bytes);
  absl::Status OpenFile(uint64_t index);
  void CloseFile();
  std::string FilePath(uint64_t index) const;
  // WriteThrough writes what is pending unless every record up to seq is written already, and
  // returns the outcome for seq (OK once it is written, else the write error).
  absl::Status WriteThrough(uint64_t seq);
  // WritePendingLocked moves pending_ behind batch_ and writes batch_ (write_mu_ held).
  void WritePendingLocked();
  void LogProblems(const absl::Status& write_error);

  const DecisionLogOptions options_;
  int dir_fd_ = -1;  // holds the flock; fsync'ed after a file is created

  // Writer state: Open sets it before the writer thread starts; then it is guarded by write_mu_
  // (held by whoever writes: the writer thread, a sync Append, Flush, a caller that found the
  // writer behind).
  std::mutex write_mu_;
  int fd_ = -1;                    // the file appended to; -1 after rotation until the next write
  uint64_t file_index_ = 0;        // its number (decisions-<file_index_>.jsonl)
  uint64_t file_bytes_ = 0;        // its size
  std::string batch_;              // finished lines taken from pending_, not written yet
  bool failing_ = false;           // the last write attempt failed
  uint64_t errors_since_log_ = 0;  // failed attempts not yet reported
  uint64_t dropped_logged_ = 0;    // drops reported so far
  absl::Time last_error_log_ = absl::InfinitePast();
  absl::Time last_drop_log_ = absl::InfinitePast();

  // Guards the members below it; never held while writing. A std::mutex, not absl::Mutex: Append
  // takes it on every decision, and Debian's Abseil is several times slower (docs/perf.md).
  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // wakes the writer
  uint64_t seq_ = 0;                 // the last numbered record's seq
  std::string head_;                 // its hash (64 hex), or 64 zeros
  std::string pending_;              // finished lines nobody has taken to write yet
  uint64_t written_seq_ = 0;         // every record up to this seq is in a file
  bool writer_idle_ = false;         // the writer sleeps until an Append wakes it
  bool retry_ = false;               // the last write attempt left records in batch_
  bool stop_ = false;
  absl::Status last_error_;  // of the last write attempt
  uint64_t dropped_ = 0;

  std::atomic<uint64_t> records_{0}, bytes_{0}, files_{0}, write_errors_{0};
  std::thread writer_;
};

// VerifyResult describes an intact log.
struct VerifyResult {
  uint64_t files = 0;    // decisions-*.jsonl files read
  uint64_t records = 0;  // records checked
  // Empty when the chain starts at the first record ever (seq 1, prev 64 zeros). Otherwise older
  // files were removed and the first available record was taken on trust:
  // "DIR/decisions-000004.jsonl:1 (seq 3001)".
  std::string anchor;
  uint64_t last_seq = 0;  // seq of the newest record (0 when there is none)
  std::string head;       // hash of the newest record; copy it elsewhere to detect a rewrite
};

// VerifyLog checks every decisions-*.jsonl file of dir in number order: each line is a record,
// its hash is the SHA-256 it claims, seq increases by 1 and prev equals the previous record's
// hash, across files. The first record of decisions-000001.jsonl must be the genesis record. It
// only reads; verify a log that is being written and its last line may be torn.
// Errors: DATA_LOSS "FILE:LINE: message" at the first break (an altered record, a missing or
// reordered one, a line that is not a record, a torn last line); NOT_FOUND if dir does not exist
// or holds no log file; the errno status of a file that cannot be read.
absl::StatusOr<VerifyResult> VerifyLog(absl::string_view dir);

// ReadRecentRecords calls visit with the lines of dir's log files, newest first (the newest file
// from its last line up, then the one before), until visit returns false or the lines run out.
// Empty and torn lines are skipped; the chain is not checked (VerifyLog does that). The server
// reads its recent ALLOW decisions back this way at start-up (idempotency across a restart).
// Errors: the errno status of a directory or file that cannot be read.
absl::Status ReadRecentRecords(absl::string_view dir,
                               absl::FunctionRef<bool(absl::string_view line)> visit);

}  // namespace agate::store

#endif  // AGATE_STORE_DECISION_LOG_H_
