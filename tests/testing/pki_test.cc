// The test PKI itself: certificates chain to their CA and carry the names and usages asked for,
// an expired or foreign certificate does not verify, and ES256 signatures come out as r||s.
#include "tests/testing/pki.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"

namespace agate::testing {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<X509, decltype(&X509_free)> ParseCert(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), pem.size()), BIO_free);
  return {PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free};
}

// VerifyError returns X509_V_OK when cert chains to ca for purpose (X509_PURPOSE_SSL_SERVER...)
// at the current time, or OpenSSL's verification error.
int VerifyError(const TestCa& ca, const std::string& cert_pem, int purpose) {
  auto cert = ParseCert(cert_pem);
  EXPECT_NE(cert, nullptr);
  if (cert == nullptr) return -1;
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  X509_STORE_add_cert(store.get(), ca.cert());
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(),
                                                                      X509_STORE_CTX_free);
  X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr);
  X509_STORE_CTX_set_purpose(ctx.get(), purpose);
  X509_verify_cert(ctx.get());
  return X509_STORE_CTX_get_error(ctx.get());
}

TEST(PkiTest, IssuesAServerCertificateForLocalhost) {
  const TestCa ca = TestCa::Create();
  const CertAndKey server = IssueCert(
      ca, {.common_name = "localhost", .dns_sans = {"localhost"}, .ip_sans = {"127.0.0.1"}});
  EXPECT_EQ(VerifyError(ca, server.cert_pem, X509_PURPOSE_SSL_SERVER), X509_V_OK);
  EXPECT_EQ(VerifyError(ca, server.cert_pem, X509_PURPOSE_SSL_CLIENT), X509_V_ERR_INVALID_PURPOSE);
  auto cert = ParseCert(server.cert_pem);
  EXPECT_EQ(X509_check_host(cert.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "example.com", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.2", 0), 0);
  EXPECT_THAT(server.key_pem, HasSubstr("-----BEGIN PRIVATE KEY-----"));
}

TEST(PkiTest, IssuesAClientCertificateWithASpiffeId) {
  const TestCa ca = TestCa::Create();
  const CertAndKey client = IssueCert(ca, {.common_name = "support-bot",
                                           .uri_sans = {"spiffe://example.org/agent/support-bot"},
                                           .usage = CertUsage::kClient,
                                           .key_type = KeyType::kRsa2048});
  EXPECT_EQ(VerifyError(ca, client.cert_pem, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  EXPECT_EQ(VerifyError(ca, client.cert_pem, X509_PURPOSE_SSL_SERVER), X509_V_ERR_INVALID_PURPOSE);
  auto cert = ParseCert(client.cert_pem);
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr));
  ASSERT_NE(names, nullptr);
  ASSERT_EQ(sk_GENERAL_NAME_num(names), 1);
  const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, 0);
  ASSERT_EQ(name->type, GEN_URI);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(name->d.ia5)),
                        ASN1_STRING_length(name->d.ia5)),
            "spiffe://example.org/agent/support-bot");
  GENERAL_NAMES_free(names);
}

TEST(PkiTest, ExpiredAndForeignCertificatesDoNotVerify) {
  const TestCa ca = TestCa::Create();
  const CertAndKey expired = IssueCert(ca, {.common_name = "localhost",
                                            .dns_sans = {"localhost"},
                                            .not_before = absl::Now() - absl::Hours(48),
                                            .validity = absl::Hours(24)});
  EXPECT_EQ(VerifyError(ca, expired.cert_pem, X509_PURPOSE_SSL_SERVER),
            X509_V_ERR_CERT_HAS_EXPIRED);
  const TestCa other = TestCa::Create("another CA");
  const CertAndKey foreign = IssueCert(other, {.common_name = "localhost"});
  EXPECT_EQ(VerifyError(ca, foreign.cert_pem, X509_PURPOSE_SSL_SERVER),
            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
}

TEST(PkiTest, WritePemWritesTheCertificateAndAPrivateKey) {
  TempDir dir;
  const TestCa ca = TestCa::Create();
  const std::string path = WritePem(dir.path() + "/tls", "ca", ca.pem());
  EXPECT_EQ(path, dir.path() + "/tls/ca.crt");
  std::stringstream cert;
  cert << std::ifstream(path).rdbuf();
  EXPECT_EQ(cert.str(), ca.pem().cert_pem);
  struct stat st;
  ASSERT_EQ(stat((dir.path() + "/tls/ca.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
}

TEST(PkiTest, SignaturesAreInJwsForm) {
  // ES256 is the 64-byte r||s, RS256 the 256-byte PKCS #1 signature, EdDSA 64 bytes.
  EXPECT_EQ(TestKey::Generate(KeyType::kEcP256).Sign("x").size(), 64);
  EXPECT_EQ(TestKey::Generate(KeyType::kRsa2048).Sign("x").size(), 256);
  EXPECT_EQ(TestKey::Generate(KeyType::kEd25519).Sign("x").size(), 64);
  const std::string token =
      SignJwt(TestKey::Generate(KeyType::kEd25519), R"({"alg":"EdDSA"})", R"({"sub":"a"})");
  const std::vector<std::string> parts = absl::StrSplit(token, '.');
  ASSERT_EQ(parts.size(), 3);
  std::string header;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(parts[0], &header));
  EXPECT_EQ(header, R"({"alg":"EdDSA"})");
  EXPECT_EQ(parts[0].find('='), std::string::npos);
}

}  // namespace
}  // namespace agate::testing
