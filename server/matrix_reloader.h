// MatrixReloader: hot reload of the escalation matrix file into a running Service, on demand
// (SIGHUP) and, once started, whenever the file changes (--watch).
//
// Reload reads and compiles the file. A good matrix replaces the Service's (or, for the shadow
// matrix, its candidate's: the log says "shadow matrix" where it says "matrix") atomically
// (Service::SetMatrix: calls in flight finish on the snapshot they started with; open cases keep
// the lane definitions they were opened with) and is logged at info level as
//   reloaded matrix FILE: version A -> B (N lanes, M triggers)
// with its lint warnings at warn level. A file that is missing, unreadable, empty, truncated or
// invalid changes nothing: every diagnostic is logged at error level (`FILE:LINE:COL: error:
// ...`), then `matrix reload failed: ...; still serving version A`, and the old matrix serves on.
//
// The watcher stats the file (mtime, ctime, size, inode, device: editors and config management
// replace files by rename) every interval from one thread. It reloads when the file changed since
// the last reload and then stayed the same for one more poll, so a file being written is not read
// half-way as long as its writer pauses less than one interval (and a half-written file is
// rejected like any invalid one; the next change reloads again). A missing file is one more
// state: it is reported once (as a failed reload), and the file coming back is reloaded.
//
// Thread-safe: Reload may be called from the signal loop while the watcher runs; reloads are
// serialized, so the log and the swaps happen in the same order.
//
// Example:
//   MatrixReloader reloader(options.matrix, service);
//   if (options.watch) reloader.Start(options.watch_interval);
//   ...on SIGHUP: reloader.Reload();   // logs its outcome; the status is for callers and tests
//   reloader.Stop();
#ifndef AGATE_SERVER_MATRIX_RELOADER_H_
#define AGATE_SERVER_MATRIX_RELOADER_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/file_watch.h"
#include "engine/matrix.h"
#include "service/service.h"

namespace agate::server {

class MatrixReloader {
 public:
  // What a reloader swaps: the live matrix, or shadow mode's candidate (agate-server
  // --shadow-matrix, reloaded with the live one). `what` names it in the log ("matrix", "shadow
  // matrix"); the counters count swaps and failures.
  struct Target {
    std::string what;
    std::function<std::shared_ptr<const engine::Matrix>()> get;
    std::function<void(std::shared_ptr<const engine::Matrix>)> set;
    std::atomic<uint64_t>* reloads;
    std::atomic<uint64_t>* failures;
  };
  // LiveMatrix and ShadowMatrix are the targets of service's matrix and of its candidate (the
  // service must have a shadow: Service::EnableShadow).
  static Target LiveMatrix(service::Service& service);
  static Target ShadowMatrix(service::Service& service);

  // service must outlive the reloader. The file as it is now counts as loaded: construct the
  // reloader right after loading the matrix the service started with.
  MatrixReloader(std::string path, service::Service& service)
      : MatrixReloader(std::move(path), LiveMatrix(service)) {}
  MatrixReloader(std::string path, Target target);
  // Stops the watcher.
  ~MatrixReloader();
  MatrixReloader(const MatrixReloader&) = delete;
  MatrixReloader& operator=(const MatrixReloader&) = delete;

  // Reload loads the file now and swaps it in if it is valid. Returns OK after a swap; otherwise
  // LoadMatrixFile's error (INVALID_ARGUMENT with every error, one `FILE:LINE:COL: error: ...`
  // per line; NOT_FOUND for a missing file; the errno's status for an unreadable one) and the
  // running matrix is unchanged. Logs the outcome either way.
  absl::Status Reload() ABSL_LOCKS_EXCLUDED(mu_);

  // Poll runs one step of the watcher: stat the file and reload it if it differs from what the
  // last reload saw and equals what the previous Poll saw. Returns the reload's status, or
  // nullopt when it did not reload. Start calls it every interval; tests call it directly.
  std::optional<absl::Status> Poll() ABSL_LOCKS_EXCLUDED(mu_);

  // Start runs Poll every interval on a new thread until Stop. Call it at most once.
  void Start(absl::Duration interval);
  // Stop ends the watcher thread, if any, and waits for it (a reload in progress finishes).
  void Stop();

  const std::string& path() const { return path_; }

 private:
  absl::Status ReloadLocked(const FileStamp& stamp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  const Target target_;
  absl::Mutex mu_;
  FileStamp loaded_ ABSL_GUARDED_BY(mu_);  // the file as the last (attempted) load saw it
  FileStamp polled_ ABSL_GUARDED_BY(mu_);  // the file as the previous Poll saw it
  absl::Notification stop_;
  std::thread watcher_;
};

}  // namespace agate::server

#endif  // AGATE_SERVER_MATRIX_RELOADER_H_
