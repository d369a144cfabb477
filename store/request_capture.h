// RequestCapture: agate-server --capture-requests DIR. Writes the requests the server decides to
// DIR/requests.jsonl in the `agate eval` input format (one agate.v1.EvaluateRequest as proto3
// JSON per line), redacted as the live matrix's `capture: {redact: [...]}` says
// (engine/redaction.h), so that `agate shadow --requests DIR/requests.jsonl` can replay real
// traffic against a candidate matrix offline.
//
// Size-bounded: the file never holds more than max_bytes. When the next line would pass the
// bound the capture STOPS (it does not rotate: a capture is a sample of traffic from its start,
// and what was captured is never overwritten); the stop is logged once and every request after
// it is counted in skipped(). A file that exists already is appended to, and its size counts.
//
// Thread-safe: Write takes a mutex; each line is written whole with one write(2), so a reader
// never sees a partial line.
//
// Example:
//   ASSIGN_OR_RETURN(std::unique_ptr<RequestCapture> capture,
//                    RequestCapture::Open("/var/lib/agate/capture", 64 << 20));
//   capture->Write(request, matrix->capture_redact());
#ifndef AGATE_STORE_REQUEST_CAPTURE_H_
#define AGATE_STORE_REQUEST_CAPTURE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "engine/request.h"

namespace agate::store {

class RequestCapture {
 public:
  // The file's name in the capture directory.
  static constexpr char kFileName[] = "requests.jsonl";

  // Open creates dir (and its parents) if needed and opens dir/requests.jsonl for appending.
  // INVALID_ARGUMENT for max_bytes < 1024; the errno's status naming the path when the directory
  // or the file cannot be made or opened.
  static absl::StatusOr<std::unique_ptr<RequestCapture>> Open(const std::string& dir,
                                                              uint64_t max_bytes);
  ~RequestCapture();
  RequestCapture(const RequestCapture&) = delete;
  RequestCapture& operator=(const RequestCapture&) = delete;

  // Write appends request, redacted (redact: fields that passed engine::CheckRedactField), unless
  // the capture stopped. Returns whether it was written. A write error stops the capture (logged).
  bool Write(const engine::Request& request, const std::vector<std::string>& redact);

  const std::string& path() const { return path_; }
  uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  uint64_t written() const { return written_.load(std::memory_order_relaxed); }
  uint64_t skipped() const { return skipped_.load(std::memory_order_relaxed); }

 private:
  RequestCapture(std::string path, int fd, uint64_t size, uint64_t max_bytes);

  const std::string path_;
  const int fd_;
  const uint64_t max_bytes_;
  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<uint64_t> bytes_;
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> skipped_{0};
};

}  // namespace agate::store

#endif  // AGATE_STORE_REQUEST_CAPTURE_H_
