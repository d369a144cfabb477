// JwkSet: the public keys of one token issuer, read from a JWKS file (RFC 7517
// `{"keys":[...]}`), ready to verify JWS signatures with OpenSSL.
//
// Three kinds of key, each with exactly one algorithm (RFC 7518, RFC 8037):
//   kty RSA (n, e; at least 2048 bits)          RS256
//   kty EC, crv P-256 (x, y: 32 bytes each)     ES256
//   kty OKP, crv Ed25519 (x: 32 bytes)          EdDSA
// Every key needs a `kid`, unique in the file. `alg` is optional and, when present, must be the
// key's algorithm; a key whose `use` is present and not "sig" (an encryption key) is skipped.
// A file holding any private member (d, p, q, dp, dq, qi, oth, k) is refused whole: a public
// JWKS that carries a private key has leaked it. Other members (x5c, key_ops, ...) are ignored.
//
// Errors are INVALID_ARGUMENT, naming the source and the key (`jwks.json: key 1 (kid "k2"): x
// is 31 bytes, not 32`): not JSON, a missing or mistyped member, bad base64url, a wrong size, an
// unsupported kty or crv, a point not on the curve, a duplicate kid, no signature key at all.
// Load adds the errors of reading the file (NOT_FOUND, PERMISSION_DENIED..., naming the path).
//
// Immutable and thread-safe once built; a Key lives as long as its set. Verifying with one key
// from many threads at once is safe (OpenSSL 3 keys are read-only once built).
//
// Example:
//   ASSIGN_OR_RETURN(std::shared_ptr<const JwkSet> keys, JwkSet::Load("/etc/agate/idp.jwks"));
//   const JwkSet::Key* key = keys->Find("2024-rotation");
//   if (key != nullptr && key->algorithm() == JwsAlgorithm::kRs256 &&
//       key->VerifySignature(header_dot_payload, signature_bytes)) { ... }
#ifndef AGATE_SERVER_JWKS_H_
#define AGATE_SERVER_JWKS_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

typedef struct evp_pkey_st EVP_PKEY;
namespace google::protobuf {
class Struct;
}

namespace agate::server {

// The JWS algorithms agate verifies; each key type has exactly one.
enum class JwsAlgorithm { kRs256, kEs256, kEdDsa };

// JwsAlgorithmName returns the algorithm's JOSE name: "RS256", "ES256" or "EdDSA".
absl::string_view JwsAlgorithmName(JwsAlgorithm algorithm);

// Base64UrlDecode decodes unpadded base64url (RFC 4648 section 5, as JOSE uses it) into out.
// Returns false on any other character (padding and whitespace included), on an impossible
// length, and on non-zero unused bits in the last character (so each byte string has exactly one
// encoding).
bool Base64UrlDecode(absl::string_view in, std::string* out);

// ParseJsonObject parses a JSON object (protobuf's JSON parser, which refuses duplicate member
// names) into out. INVALID_ARGUMENT with the parser's one-line reason, without the input.
absl::Status ParseJsonObject(absl::string_view json, google::protobuf::Struct* out);

class JwkSet {
 public:
  // The largest JWKS file Load reads.
  static constexpr size_t kMaxFileBytes = 1 << 20;

  struct PkeyFree {
    void operator()(EVP_PKEY* pkey) const;
  };
  using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

  class Key {
   public:
    Key(std::string kid, JwsAlgorithm algorithm, Pkey pkey)
        : kid_(std::move(kid)), algorithm_(algorithm), pkey_(std::move(pkey)) {}

    const std::string& kid() const { return kid_; }
    JwsAlgorithm algorithm() const { return algorithm_; }

    // VerifySignature returns whether signature is this key's signature of signing_input under
    // algorithm() (for ES256, the 64-byte r||s of RFC 7518 section 3.4, not DER).
    bool VerifySignature(absl::string_view signing_input, absl::string_view signature) const;

    // SameKey returns whether other holds the same public key with the same algorithm.
    bool SameKey(const Key& other) const;

   private:
    std::string kid_;
    JwsAlgorithm algorithm_;
    Pkey pkey_;
  };

  // Parse reads JWKS JSON; source names it in errors (the file's path).
  static absl::StatusOr<std::shared_ptr<const JwkSet>> Parse(absl::string_view json,
                                                             absl::string_view source);
  // Load reads the file at path (at most kMaxFileBytes) and parses it with source = path.
  static absl::StatusOr<std::shared_ptr<const JwkSet>> Load(const std::string& path);

  // Find returns the key with this kid, or null.
  const Key* Find(absl::string_view kid) const;

  const std::string& source() const { return source_; }
  // keys returns the signature keys in file order (skipped keys are not there).
  const std::vector<Key>& keys() const { return keys_; }

 private:
  JwkSet(std::string source, std::vector<Key> keys);

  std::string source_;
  std::vector<Key> keys_;
  absl::flat_hash_map<std::string, size_t> by_kid_;  // kid -> index in keys_
};

}  // namespace agate::server

#endif  // AGATE_SERVER_JWKS_H_
