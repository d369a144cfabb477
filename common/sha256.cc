#include "common/sha256.h"

// SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, but they remain in its
// ABI and call the compression function directly: measured cold (a request thread between calls),
// EVP_DigestInit_ex and its provider bookkeeping cost several microseconds more per digest.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace agate {

Sha256::Bytes Sha256::Digest(absl::string_view data) {
  Bytes digest{};
  SHA256_CTX ctx;
  if (SHA256_Init(&ctx) != 1 || SHA256_Update(&ctx, data.data(), data.size()) != 1 ||
      SHA256_Final(digest.data(), &ctx) != 1) {
    std::fputs("agate: OpenSSL SHA-256 failed (a broken OpenSSL installation)\n", stderr);
    std::abort();
  }
  return digest;
}

void Sha256::HexAppend(absl::string_view data, std::string* out) {
  const Bytes digest = Digest(data);
  char hex[64];
  const absl::string_view digits = DigestHex(
      absl::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()), hex);
  out->append(digits.data(), digits.size());
}

absl::string_view DigestHex(absl::string_view digest, char (&out)[64]) {
  static constexpr char kHex[] = "0123456789abcdef";
  const size_t n = std::min(digest.size(), sizeof(out) / 2);
  for (size_t i = 0; i < n; ++i) {
    const auto byte = static_cast<unsigned char>(digest[i]);
    out[2 * i] = kHex[byte >> 4];
    out[2 * i + 1] = kHex[byte & 0xF];
  }
  return absl::string_view(out, 2 * n);
}

Sha256& ThreadSha256() {
  thread_local Sha256 hasher;
  return hasher;
}

}  // namespace agate
