// ConsoleFiles: the operator console's static files (console/, built into a directory by
// esbuild), served at / by the HTTP listener (docs/operations.md, "Operator console").
//
// Load reads every regular file under the directory into memory once, at start-up: a request
// can only name a file that was there then, so no path (.., %2e%2e, symlinks, absolute paths)
// reaches outside it, and nothing is read from disk per request. Dot files and symbolic links
// are skipped.
//
// Caching: a file whose name carries esbuild's content hash (`app-HASH.js`) is immutable for a
// year; the rest (index.html) must be revalidated, with an ETag (If-None-Match answers 304).
//
// Immutable after Load; thread-safe.
//
// Example:
//   ASSIGN_OR_RETURN(std::shared_ptr<const ConsoleFiles> console,
//                    ConsoleFiles::Load("build/console"));
//   const ConsoleFiles::File* file = console->Find("/");  // index.html
#ifndef AGATE_SERVER_CONSOLE_FILES_H_
#define AGATE_SERVER_CONSOLE_FILES_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace agate::server {

class ConsoleFiles {
 public:
  struct File {
    std::string content;
    std::string content_type;   // from the extension; application/octet-stream if unknown
    std::string etag;           // "\"<first 16 hex digits of the SHA-256>\""
    std::string cache_control;  // immutable for hashed names, no-cache otherwise
  };

  // Load reads dir (at most max_files files and max_bytes in all). FAILED_PRECONDITION naming
  // dir when it is missing, not a directory, has no index.html, or is past a bound.
  static absl::StatusOr<std::shared_ptr<const ConsoleFiles>> Load(const std::string& dir,
                                                                  size_t max_files = 256,
                                                                  size_t max_bytes = 32 << 20);

  // Find returns the file at a request's path ("/" and "/index.html" are index.html), or null.
  const File* Find(absl::string_view path) const;

  const std::string& dir() const { return dir_; }
  size_t size() const { return files_.size(); }

 private:
  explicit ConsoleFiles(std::string dir) : dir_(std::move(dir)) {}

  std::string dir_;
  absl::flat_hash_map<std::string, File> files_;  // by path relative to dir_, '/'-separated
};

// ContentTypeOf returns the Content-Type for a file name's extension.
absl::string_view ContentTypeOf(absl::string_view name);

}  // namespace agate::server

#endif  // AGATE_SERVER_CONSOLE_FILES_H_
