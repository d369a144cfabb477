// HttpPost: an HTTP(S) POST, through the agate_http module (server/http_module.cc) loaded with
// dlopen on first use, so that a server without --webhook never loads the HTTP client and the
// OpenSSL state its library constructor sets up.
//
// The module is looked for next to the running executable (agate_http.so), then at the path it
// was built at. Thread-safe.
//
// Example:
//   absl::StatusOr<HttpPost> post = HttpPost::Load();
//   absl::StatusOr<int> status = post->Post("http://127.0.0.1:9000", "/hook", "{}",
//   absl::Seconds(5));
#ifndef AGATE_SERVER_HTTP_POST_H_
#define AGATE_SERVER_HTTP_POST_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace agate::server {

// HttpModuleSymbol loads the agate_http module once per process (next to the executable, then
// where it was built) and returns its symbol name; FAILED_PRECONDITION naming the paths tried and
// dlopen's error, or the missing symbol.
absl::StatusOr<void*> HttpModuleSymbol(const char* name);

class HttpPost {
 public:
  // The module's entry point: the HTTP status, or -1 with a message in error.
  using Function = int (*)(const char* scheme_host_port, const char* path, const char* body,
                           size_t body_size, int64_t timeout_us, char* error, size_t error_size);

  // Load finds and loads the module once per process; FAILED_PRECONDITION naming the paths
  // tried and dlopen's error when it cannot.
  static absl::StatusOr<HttpPost> Load();

  // Post sends body as application/json to scheme_host_port + path within timeout (connect,
  // read and write each) and returns the HTTP status; UNAVAILABLE with the reason when there is
  // no answer.
  absl::StatusOr<int> Post(const std::string& scheme_host_port, const std::string& path,
                           absl::string_view body, absl::Duration timeout) const;

 private:
  explicit HttpPost(Function function) : function_(function) {}
  Function function_;
};

}  // namespace agate::server

#endif  // AGATE_SERVER_HTTP_POST_H_
