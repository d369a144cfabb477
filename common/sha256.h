// Sha256: SHA-256 through OpenSSL's low-level SHA256_* functions.
//
// OpenSSL 3's one-shot SHA256() looks the algorithm up in the provider registry on every call,
// and even a reused EVP context pays the provider's bookkeeping on each EVP_DigestInit_ex: on a
// request thread whose caches are cold between calls that was several microseconds per digest
// of a short request. The low-level functions run the compression rounds and nothing else.
//
// Thread-safe (it has no state); ThreadSha256() remains as the one place callers get it from.
//
// Example:
//   std::array<unsigned char, 32> d = ThreadSha256().Digest(bytes);
//   ThreadSha256().HexAppend(line, &out);   // 64 lowercase hex digits
#ifndef AGATE_COMMON_SHA256_H_
#define AGATE_COMMON_SHA256_H_

#include <array>
#include <string>

#include "absl/strings/string_view.h"

namespace agate {

class Sha256 {
 public:
  using Bytes = std::array<unsigned char, 32>;

  // Digest returns the SHA-256 of data. An OpenSSL without SHA-256 is a broken installation:
  // the process aborts with a message rather than hash nothing.
  Bytes Digest(absl::string_view data);
  // HexAppend appends the lowercase hex SHA-256 of data (64 characters) to out.
  void HexAppend(absl::string_view data, std::string* out);
};

// DigestHex writes a digest (up to 32 bytes; Sha256::Bytes or the same bytes in a string) as
// lowercase hex into out and returns the digits written.
absl::string_view DigestHex(absl::string_view digest, char (&out)[64]);

// ThreadSha256 returns the calling thread's Sha256.
Sha256& ThreadSha256();

}  // namespace agate

#endif  // AGATE_COMMON_SHA256_H_
