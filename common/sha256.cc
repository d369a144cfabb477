#include "common/sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

namespace agate {

Sha256::Sha256() : md_(EVP_MD_fetch(nullptr, "SHA256", nullptr)), ctx_(EVP_MD_CTX_new()) {}

Sha256::~Sha256() {
  EVP_MD_CTX_free(ctx_);
  EVP_MD_free(md_);
}

Sha256::Bytes Sha256::Digest(absl::string_view data) {
  Bytes digest{};
  unsigned int size = 0;
  if (md_ == nullptr || ctx_ == nullptr || EVP_DigestInit_ex(ctx_, md_, nullptr) != 1 ||
      EVP_DigestUpdate(ctx_, data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx_, digest.data(), &size) != 1 || size != digest.size()) {
    std::fputs("agate: OpenSSL SHA-256 failed (a broken OpenSSL installation)\n", stderr);
    std::abort();
  }
  return digest;
}

void Sha256::HexAppend(absl::string_view data, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  const Bytes digest = Digest(data);
  char hex[64];
  for (size_t i = 0; i < digest.size(); ++i) {
    hex[2 * i] = kHex[digest[i] >> 4];
    hex[2 * i + 1] = kHex[digest[i] & 0xF];
  }
  out->append(hex, sizeof(hex));
}

Sha256& ThreadSha256() {
  thread_local Sha256 hasher;
  return hasher;
}

}  // namespace agate
