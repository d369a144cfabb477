// A test PKI, generated in memory with OpenSSL (never committed, never shelled out to `openssl`):
// signing keys and JWTs for the token tests, a CA and the certificates for the TLS tests.
//
// JWTs are built from the header and payload JSON exactly as given, so a test can forge any of
// them: alg none, a kid the JWKS lacks, a payload changed after signing, an HS256 "signature"
// made with the public key (HmacJwt), an RS256 header over an EC signature.
//
// Failures of OpenSSL here are a broken installation, not a test outcome: the process aborts
// with a message. Thread-compatible; a TestKey or TestCa may be used from many threads once made.
//
// Example:
//   const TestKey key = TestKey::Generate(KeyType::kEcP256);
//   WriteFileOrDie(dir + "/jwks.json", Jwks({{&key, "k1"}}));
//   std::string token = SignJwt(key, R"({"alg":"ES256","kid":"k1"})",
//                               R"({"iss":"https://idp","sub":"alice","aud":"agate","exp":2e9})");
//
//   const TestCa ca = TestCa::Create();
//   CertAndKey server = IssueCert(ca, {.common_name = "localhost",
//                                      .dns_sans = {"localhost"}, .ip_sans = {"127.0.0.1"},
//                                      .usage = CertUsage::kServer});
//   WritePem(dir, "server", server);  // dir/server.crt, dir/server.key
#ifndef AGATE_TESTS_TESTING_PKI_H_
#define AGATE_TESTS_TESTING_PKI_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

typedef struct evp_pkey_st EVP_PKEY;
typedef struct x509_st X509;

namespace agate::testing {

enum class KeyType { kRsa2048, kEcP256, kEd25519 };

// TestKey is a freshly generated key pair.
class TestKey {
 public:
  static TestKey Generate(KeyType type);

  KeyType type() const { return type_; }
  // Algorithm is the JWS algorithm of the key's type: "RS256", "ES256" or "EdDSA".
  absl::string_view Algorithm() const;
  // PrivatePem is the private key as PKCS#8 PEM; PublicPem the public key as SPKI PEM (what an
  // HS256 confusion attack uses as its "secret").
  std::string PrivatePem() const;
  std::string PublicPem() const;
  // Jwk is the public key as a JWK object (RFC 7517) with kid, "use":"sig" and alg.
  std::string Jwk(absl::string_view kid) const;
  // Sign returns the JWS signature of data (for ES256 the 64-byte r||s, not DER).
  std::string Sign(absl::string_view data) const;

  EVP_PKEY* pkey() const { return pkey_.get(); }

 private:
  TestKey(KeyType type, EVP_PKEY* pkey);  // takes pkey

  KeyType type_;
  std::shared_ptr<EVP_PKEY> pkey_;
};

// Base64Url encodes data as unpadded base64url.
std::string Base64Url(absl::string_view data);
// SignJwt returns base64url(header).base64url(payload).base64url(key's signature of the two).
std::string SignJwt(const TestKey& key, absl::string_view header_json,
                    absl::string_view payload_json);
// HmacJwt is the same signed with HMAC-SHA256 and secret.
std::string HmacJwt(absl::string_view secret, absl::string_view header_json,
                    absl::string_view payload_json);
// Jwks returns {"keys":[...]} with each key's Jwk under its kid.
std::string Jwks(const std::vector<std::pair<const TestKey*, std::string>>& keys);

// A certificate and its private key, both PEM.
struct CertAndKey {
  std::string cert_pem;
  std::string key_pem;
};

// TestCa is a self-signed CA (EC P-256) valid from an hour ago for 30 days.
class TestCa {
 public:
  static TestCa Create(absl::string_view common_name = "agate test CA");

  const CertAndKey& pem() const { return pem_; }
  X509* cert() const { return cert_.get(); }
  const TestKey& key() const { return key_; }

 private:
  TestCa(TestKey key, X509* cert, CertAndKey pem);

  TestKey key_;
  std::shared_ptr<X509> cert_;
  CertAndKey pem_;
};

enum class CertUsage { kServer, kClient, kServerAndClient };

// (Every member has an initializer, so designated initializers may leave any out.)
struct CertSpec {
  std::string common_name = "";
  std::vector<std::string> dns_sans = {};  // "localhost"
  std::vector<std::string> uri_sans = {};  // "spiffe://example.org/agent/support-bot"
  std::vector<std::string> ip_sans = {};   // "127.0.0.1", "::1"
  CertUsage usage = CertUsage::kServer;
  std::optional<absl::Time> not_before = std::nullopt;  // default: an hour ago
  absl::Duration validity = absl::Hours(24);
  KeyType key_type = KeyType::kEcP256;
};

// IssueCert returns a certificate for spec signed by ca (with a new key of spec.key_type).
CertAndKey IssueCert(const TestCa& ca, const CertSpec& spec);

// LocalhostServerCert is a server certificate for localhost and 127.0.0.1 signed by ca.
CertAndKey LocalhostServerCert(const TestCa& ca);

// WritePem writes pem's certificate to dir/name.crt and key to dir/name.key (mode 0600), creating
// dir, and returns the certificate's path.
std::string WritePem(const std::string& dir, absl::string_view name, const CertAndKey& pem);
// WriteFileOrDie replaces path with contents atomically (a temporary file renamed over it, as
// configuration management does: the file gets a new inode).
void WriteFileOrDie(const std::string& path, absl::string_view contents);

}  // namespace agate::testing

#endif  // AGATE_TESTS_TESTING_PKI_H_
