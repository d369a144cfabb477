// Sha256: SHA-256 through OpenSSL's EVP interface, with the algorithm fetched once.
//
// OpenSSL 3's one-shot SHA256() looks the algorithm up in the provider registry on every call
// (several hundred nanoseconds and a lock); a Sha256 fetches it once and reuses one context, so
// hashing a short request costs what the compression rounds cost.
//
// Thread-compatible: use one per thread (ThreadSha256() gives the calling thread's).
//
// Example:
//   std::array<unsigned char, 32> d = ThreadSha256().Digest(bytes);
//   ThreadSha256().HexAppend(line, &out);   // 64 lowercase hex digits
#ifndef AGATE_COMMON_SHA256_H_
#define AGATE_COMMON_SHA256_H_

#include <array>
#include <string>

#include "absl/strings/string_view.h"

struct evp_md_st;
struct evp_md_ctx_st;

namespace agate {

class Sha256 {
 public:
  using Bytes = std::array<unsigned char, 32>;

  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  // Digest returns the SHA-256 of data. An OpenSSL without SHA-256 is a broken installation:
  // the process aborts with a message rather than hash nothing.
  Bytes Digest(absl::string_view data);
  // HexAppend appends the lowercase hex SHA-256 of data (64 characters) to out.
  void HexAppend(absl::string_view data, std::string* out);

 private:
  evp_md_st* md_;
  evp_md_ctx_st* ctx_;
};

// ThreadSha256 returns the calling thread's Sha256.
Sha256& ThreadSha256();

}  // namespace agate

#endif  // AGATE_COMMON_SHA256_H_
