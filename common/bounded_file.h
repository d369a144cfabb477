// ReadBoundedFile: reads a whole file that must not exceed a size limit (a matrix, an access
// policy, a JWKS). Bounded even when the file lies about its size (a pipe, /proc): it never reads
// more than one byte past the limit.
//
// Example:
//   absl::StatusOr<std::string> text = ReadBoundedFile("matrix.yaml", 4 << 20);
//   if (absl::IsOutOfRange(text.status())) ...  // "larger than 4 MiB (5242883 bytes)"
#ifndef AGATE_COMMON_BOUNDED_FILE_H_
#define AGATE_COMMON_BOUNDED_FILE_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"

namespace agate {

// ReadBoundedFile returns the contents of path. Errors: the errno's status ("cannot read: No such
// file or directory"; a directory is EISDIR), or OUT_OF_RANGE "larger than N MiB (M bytes)" when
// it holds more than max_bytes (the size is left out when the file did not say it). The messages
// do not name the path: the caller says which file it was.
absl::StatusOr<std::string> ReadBoundedFile(const std::string& path, size_t max_bytes);

// MiB renders a byte count in MiB when it is a whole number of them ("4 MiB"), in bytes otherwise.
std::string MiB(size_t bytes);

}  // namespace agate

#endif  // AGATE_COMMON_BOUNDED_FILE_H_
