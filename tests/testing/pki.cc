#include "tests/testing/pki.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace agate::testing {
namespace {

constexpr size_t kP256FieldBytes = 32;

// Check aborts with OpenSSL's errors when ok is false: a broken installation, not a test result.
void Check(bool ok, absl::string_view what) {
  if (ok) return;
  fprintf(stderr, "pki: %.*s failed\n", static_cast<int>(what.size()), what.data());
  ERR_print_errors_fp(stderr);
  std::abort();
}

const unsigned char* Bytes(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct BnFree {
  void operator()(BIGNUM* bn) const { BN_free(bn); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* sig) const { ECDSA_SIG_free(sig); }
};

// Pem returns what write wrote into a memory BIO.
template <typename Write>
std::string Pem(Write write, absl::string_view what) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  Check(bio != nullptr && write(bio.get()) == 1, what);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, size);
}

// BnParam returns the key's big-number parameter name as big-endian bytes (padded to size).
std::string BnParam(EVP_PKEY* pkey, const char* name, int size = 0) {
  BIGNUM* raw = nullptr;
  Check(EVP_PKEY_get_bn_param(pkey, name, &raw) == 1, name);
  std::unique_ptr<BIGNUM, BnFree> bn(raw);
  std::string out(size > 0 ? size : BN_num_bytes(bn.get()), '\0');
  Check(BN_bn2binpad(bn.get(), reinterpret_cast<unsigned char*>(out.data()), out.size()) ==
            static_cast<int>(out.size()),
        "BN_bn2binpad");
  return out;
}

void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  Check(ext != nullptr, absl::StrCat("extension ", OBJ_nid2sn(nid), " = ", value));
  Check(X509_add_ext(cert, ext, -1) == 1, "X509_add_ext");
  X509_EXTENSION_free(ext);
}

// NewCert returns an unsigned certificate for key named common_name, valid from not_before for
// validity, with a random 127-bit serial number.
X509* NewCert(const TestKey& key, absl::string_view common_name, absl::Time not_before,
              absl::Duration validity) {
  X509* cert = X509_new();
  Check(cert != nullptr && X509_set_version(cert, X509_VERSION_3) == 1, "X509_new");
  std::unique_ptr<BIGNUM, BnFree> serial(BN_new());
  Check(serial != nullptr && BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
            BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert)) != nullptr,
        "serial number");
  Check(
      ASN1_TIME_set(X509_getm_notBefore(cert), absl::ToTimeT(not_before)) != nullptr &&
          ASN1_TIME_set(X509_getm_notAfter(cert), absl::ToTimeT(not_before + validity)) != nullptr,
      "validity");
  Check(X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_UTF8,
                                   Bytes(common_name), common_name.size(), -1, 0) == 1,
        "common name");
  Check(X509_set_pubkey(cert, key.pkey()) == 1, "X509_set_pubkey");
  return cert;
}

void SignCert(X509* cert, const TestKey& issuer_key) {
  // Ed25519 signs the certificate itself, without a separate digest.
  const EVP_MD* md = issuer_key.type() == KeyType::kEd25519 ? nullptr : EVP_sha256();
  Check(X509_sign(cert, issuer_key.pkey(), md) > 0, "X509_sign");
}

std::string CertPem(X509* cert) {
  return Pem([cert](BIO* bio) { return PEM_write_bio_X509(bio, cert); }, "PEM_write_bio_X509");
}

void WriteFile(const std::string& path, absl::string_view contents, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    perror(path.c_str());
    std::abort();
  }
  size_t written = 0;
  while (written < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0) {
      perror(path.c_str());
      std::abort();
    }
    written += static_cast<size_t>(n);
  }
  ::close(fd);
}

}  // namespace

TestKey TestKey::Generate(KeyType type) {
  EVP_PKEY* pkey = nullptr;
  switch (type) {
    case KeyType::kRsa2048:
      pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
      break;
    case KeyType::kEcP256:
      pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
      break;
    case KeyType::kEd25519:
      pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
      break;
  }
  Check(pkey != nullptr, "EVP_PKEY_Q_keygen");
  return TestKey(type, pkey);
}

TestKey::TestKey(KeyType type, EVP_PKEY* pkey) : type_(type), pkey_(pkey, EVP_PKEY_free) {}

absl::string_view TestKey::Algorithm() const {
  switch (type_) {
    case KeyType::kRsa2048:
      return "RS256";
    case KeyType::kEcP256:
      return "ES256";
    case KeyType::kEd25519:
      return "EdDSA";
  }
  return "?";
}

std::string TestKey::PrivatePem() const {
  return Pem(
      [this](BIO* bio) {
        return PEM_write_bio_PrivateKey(bio, pkey_.get(), nullptr, nullptr, 0, nullptr, nullptr);
      },
      "PEM_write_bio_PrivateKey");
}

std::string TestKey::PublicPem() const {
  return Pem([this](BIO* bio) { return PEM_write_bio_PUBKEY(bio, pkey_.get()); },
             "PEM_write_bio_PUBKEY");
}

std::string TestKey::Jwk(absl::string_view kid) const {
  const std::string head =
      absl::StrCat(R"({"kid":")", kid, R"(","use":"sig","alg":")", Algorithm(), R"(",)");
  switch (type_) {
    case KeyType::kRsa2048:
      return absl::StrCat(head, R"("kty":"RSA","n":")",
                          Base64Url(BnParam(pkey_.get(), OSSL_PKEY_PARAM_RSA_N)), R"(","e":")",
                          Base64Url(BnParam(pkey_.get(), OSSL_PKEY_PARAM_RSA_E)), R"("})");
    case KeyType::kEcP256:
      return absl::StrCat(
          head, R"("kty":"EC","crv":"P-256","x":")",
          Base64Url(BnParam(pkey_.get(), OSSL_PKEY_PARAM_EC_PUB_X, kP256FieldBytes)), R"(","y":")",
          Base64Url(BnParam(pkey_.get(), OSSL_PKEY_PARAM_EC_PUB_Y, kP256FieldBytes)), R"("})");
    case KeyType::kEd25519: {
      unsigned char x[32];
      size_t size = sizeof(x);
      Check(EVP_PKEY_get_raw_public_key(pkey_.get(), x, &size) == 1 && size == sizeof(x),
            "EVP_PKEY_get_raw_public_key");
      return absl::StrCat(head, R"("kty":"OKP","crv":"Ed25519","x":")",
                          Base64Url(absl::string_view(reinterpret_cast<char*>(x), size)), R"("})");
    }
  }
  return "";
}

std::string TestKey::Sign(absl::string_view data) const {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  const char* digest = type_ == KeyType::kEd25519 ? nullptr : "SHA256";
  size_t size = 0;
  Check(ctx != nullptr &&
            EVP_DigestSignInit_ex(ctx.get(), nullptr, digest, nullptr, nullptr, pkey_.get(),
                                  nullptr) == 1 &&
            EVP_DigestSign(ctx.get(), nullptr, &size, Bytes(data), data.size()) == 1,
        "EVP_DigestSignInit_ex");
  std::string signature(size, '\0');
  Check(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                       Bytes(data), data.size()) == 1,
        "EVP_DigestSign");
  signature.resize(size);
  if (type_ != KeyType::kEcP256) return signature;
  // DER ECDSA-Sig-Value -> the fixed-size r||s of JWS (RFC 7518 section 3.4).
  const unsigned char* der = Bytes(signature);
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(d2i_ECDSA_SIG(nullptr, &der, signature.size()));
  Check(sig != nullptr, "d2i_ECDSA_SIG");
  std::string raw(2 * kP256FieldBytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  Check(BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out, kP256FieldBytes) == kP256FieldBytes &&
            BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out + kP256FieldBytes, kP256FieldBytes) ==
                kP256FieldBytes,
        "ECDSA r||s");
  return raw;
}

std::string Base64Url(absl::string_view data) { return absl::WebSafeBase64Escape(data); }

std::string SignJwt(const TestKey& key, absl::string_view header_json,
                    absl::string_view payload_json) {
  const std::string signing_input =
      absl::StrCat(Base64Url(header_json), ".", Base64Url(payload_json));
  return absl::StrCat(signing_input, ".", Base64Url(key.Sign(signing_input)));
}

std::string HmacJwt(absl::string_view secret, absl::string_view header_json,
                    absl::string_view payload_json) {
  const std::string signing_input =
      absl::StrCat(Base64Url(header_json), ".", Base64Url(payload_json));
  unsigned char mac[EVP_MAX_MD_SIZE];
  size_t size = 0;
  Check(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, secret.data(), secret.size(),
                  Bytes(signing_input), signing_input.size(), mac, sizeof(mac), &size) != nullptr,
        "EVP_Q_mac");
  return absl::StrCat(signing_input, ".",
                      Base64Url(absl::string_view(reinterpret_cast<char*>(mac), size)));
}

std::string Jwks(const std::vector<std::pair<const TestKey*, std::string>>& keys) {
  return absl::StrCat(
      R"({"keys":[)",
      absl::StrJoin(keys, ",",
                    [](std::string* out, const std::pair<const TestKey*, std::string>& key) {
                      absl::StrAppend(out, key.first->Jwk(key.second));
                    }),
      "]}");
}

TestCa::TestCa(TestKey key, X509* cert, CertAndKey pem)
    : key_(std::move(key)), cert_(cert, X509_free), pem_(std::move(pem)) {}

TestCa TestCa::Create(absl::string_view common_name) {
  TestKey key = TestKey::Generate(KeyType::kEcP256);
  X509* cert = NewCert(key, common_name, absl::Now() - absl::Hours(1), absl::Hours(24 * 30));
  Check(X509_set_issuer_name(cert, X509_get_subject_name(cert)) == 1, "X509_set_issuer_name");
  AddExtension(cert, cert, NID_basic_constraints, "critical,CA:TRUE");
  AddExtension(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  AddExtension(cert, cert, NID_subject_key_identifier, "hash");
  AddExtension(cert, cert, NID_authority_key_identifier, "keyid:always");
  SignCert(cert, key);
  CertAndKey pem{CertPem(cert), key.PrivatePem()};
  return TestCa(std::move(key), cert, std::move(pem));
}

CertAndKey LocalhostServerCert(const TestCa& ca) {
  return IssueCert(ca, {.common_name = "localhost",
                        .dns_sans = {"localhost"},
                        .ip_sans = {"127.0.0.1"},
                        .usage = CertUsage::kServer});
}

CertAndKey IssueCert(const TestCa& ca, const CertSpec& spec) {
  const TestKey key = TestKey::Generate(spec.key_type);
  X509* cert = NewCert(key, spec.common_name,
                       spec.not_before.value_or(absl::Now() - absl::Hours(1)), spec.validity);
  std::unique_ptr<X509, decltype(&X509_free)> owner(cert, X509_free);
  Check(X509_set_issuer_name(cert, X509_get_subject_name(ca.cert())) == 1, "X509_set_issuer_name");
  AddExtension(cert, ca.cert(), NID_basic_constraints, "critical,CA:FALSE");
  AddExtension(cert, ca.cert(), NID_key_usage,
               spec.key_type == KeyType::kRsa2048 ? "critical,digitalSignature,keyEncipherment"
                                                  : "critical,digitalSignature");
  const char* usage = spec.usage == CertUsage::kServer   ? "serverAuth"
                      : spec.usage == CertUsage::kClient ? "clientAuth"
                                                         : "serverAuth,clientAuth";
  AddExtension(cert, ca.cert(), NID_ext_key_usage, usage);
  std::vector<std::string> sans;
  for (const std::string& dns : spec.dns_sans) sans.push_back(absl::StrCat("DNS:", dns));
  for (const std::string& uri : spec.uri_sans) sans.push_back(absl::StrCat("URI:", uri));
  for (const std::string& ip : spec.ip_sans) sans.push_back(absl::StrCat("IP:", ip));
  if (!sans.empty()) AddExtension(cert, ca.cert(), NID_subject_alt_name, absl::StrJoin(sans, ","));
  AddExtension(cert, ca.cert(), NID_subject_key_identifier, "hash");
  AddExtension(cert, ca.cert(), NID_authority_key_identifier, "keyid:always");
  SignCert(cert, ca.key());
  return CertAndKey{CertPem(cert), key.PrivatePem()};
}

std::string WritePem(const std::string& dir, absl::string_view name, const CertAndKey& pem) {
  std::filesystem::create_directories(dir);
  const std::string cert_path = absl::StrCat(dir, "/", name, ".crt");
  WriteFile(cert_path, pem.cert_pem, 0644);
  WriteFile(absl::StrCat(dir, "/", name, ".key"), pem.key_pem, 0600);
  return cert_path;
}

void WriteFileOrDie(const std::string& path, absl::string_view contents) {
  // Written beside and renamed over, as configuration management replaces files: a reader never
  // sees half a file, and the file gets a new inode.
  const std::string temporary = absl::StrCat(path, ".tmp");
  WriteFile(temporary, contents, 0644);
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    perror(path.c_str());
    std::abort();
  }
}

}  // namespace agate::testing
