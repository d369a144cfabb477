#include "server/tls.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "spdlog/spdlog.h"

namespace agate::server {
namespace {

constexpr size_t kMaxPemBytes = size_t{1} << 20;

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", path, ": cannot be read"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::string pem = text.str();
  if (pem.size() > kMaxPemBytes) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", path, ": larger than 1 MiB"));
  }
  return pem;
}

// Bio wraps a PEM text for OpenSSL's readers.
struct Bio {
  explicit Bio(const std::string& text)
      : bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size()))) {}
  ~Bio() { BIO_free(bio); }
  BIO* bio;
};

// WriteAtomically writes text to path through a temporary file and a rename.
absl::Status WriteAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".new";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", tmp));
  }
  ::chmod(tmp.c_str(), 0600);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot replace ", path));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> CheckTlsFiles(const TlsFileOptions& options) {
  ASSIGN_OR_RETURN(std::string cert, ReadPem(options.cert, "--tls-cert"));
  ASSIGN_OR_RETURN(std::string key, ReadPem(options.key, "--tls-key"));
  X509* x509 = nullptr;
  {
    Bio bio(cert);
    x509 = PEM_read_bio_X509(bio.bio, nullptr, nullptr, nullptr);
  }
  if (x509 == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-cert ", options.cert, ": not a PEM certificate"));
  }
  EVP_PKEY* pkey = nullptr;
  {
    Bio bio(key);
    pkey = PEM_read_bio_PrivateKey(bio.bio, nullptr, nullptr, nullptr);
  }
  const bool key_ok = pkey != nullptr;
  const bool match = key_ok && X509_check_private_key(x509, pkey) == 1;
  const bool expired = X509_cmp_current_time(X509_get0_notAfter(x509)) < 0;
  X509_free(x509);
  EVP_PKEY_free(pkey);
  if (!key_ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-key ", options.key, ": not a PEM private key (or encrypted)"));
  }
  if (!match) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-key ", options.key, " is not the key of --tls-cert ", options.cert));
  }
  if (expired) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-cert ", options.cert, ": the certificate has expired"));
  }
  std::vector<std::string> out = {std::move(cert), std::move(key)};
  if (!options.client_ca.empty()) {
    ASSIGN_OR_RETURN(std::string ca, ReadPem(options.client_ca, "--client-ca"));
    Bio bio(ca);
    X509* first = PEM_read_bio_X509(bio.bio, nullptr, nullptr, nullptr);
    if (first == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("--client-ca ", options.client_ca, ": no PEM certificate in it"));
    }
    X509_free(first);
    out.push_back(std::move(ca));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<TlsFiles>> TlsFiles::Create(TlsFileOptions options) {
  char dir_template[] = "/tmp/agate-tls-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) {
    return absl::UnavailableError("cannot create a private directory for the TLS files");
  }
  std::unique_ptr<TlsFiles> tls(new TlsFiles(std::move(options), dir_template));
  absl::MutexLock lock(&tls->mu_);
  RETURN_IF_ERROR(tls->ReloadLocked());
  const std::string ca = tls->options_.client_ca.empty() ? "" : tls->dir_ + "/ca.pem";
  tls->provider_ = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      tls->dir_ + "/key.pem", tls->dir_ + "/cert.pem", ca, /*refresh_interval_sec=*/1);
  return tls;
}

namespace {

std::vector<std::string> Paths(const TlsFileOptions& options) {
  std::vector<std::string> paths = {options.cert, options.key};
  if (!options.client_ca.empty()) paths.push_back(options.client_ca);
  return paths;
}

}  // namespace

TlsFiles::TlsFiles(TlsFileOptions options, std::string dir)
    : options_(std::move(options)), dir_(std::move(dir)), watch_(Paths(options_)) {}

TlsFiles::~TlsFiles() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

absl::Status TlsFiles::ReloadLocked() {
  ASSIGN_OR_RETURN(std::vector<std::string> pems, CheckTlsFiles(options_));
  // The key first: gRPC reads the pair when both changed, and checks they match.
  RETURN_IF_ERROR(WriteAtomically(dir_ + "/key.pem", pems[1]));
  RETURN_IF_ERROR(WriteAtomically(dir_ + "/cert.pem", pems[0]));
  if (pems.size() > 2) RETURN_IF_ERROR(WriteAtomically(dir_ + "/ca.pem", pems[2]));
  return absl::OkStatus();
}

absl::Status TlsFiles::ReloadAndLog() {
  absl::Status status = ReloadLocked();
  if (status.ok()) {
    spdlog::info("TLS certificate reloaded from {}", options_.cert);
  } else {
    spdlog::error("TLS reload failed, still serving the previous certificate: {}",
                  std::string(status.message()));
  }
  return status;
}

absl::Status TlsFiles::Reload() {
  absl::MutexLock lock(&mu_);
  watch_.Refresh();
  return ReloadAndLog();
}

std::optional<absl::Status> TlsFiles::Poll() {
  absl::MutexLock lock(&mu_);
  if (!watch_.Settled()) return std::nullopt;
  watch_.Loaded();  // a bad file is reported once, not on every poll
  return ReloadAndLog();
}

std::shared_ptr<grpc::ServerCredentials> TlsFiles::ServerCredentials(
    bool require_client_cert) const {
  grpc::experimental::TlsServerCredentialsOptions options(provider_);
  options.watch_identity_key_cert_pairs();
  if (!options_.client_ca.empty()) {
    options.watch_root_certs();
    options.set_cert_request_type(require_client_cert
                                      ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                      : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace agate::server
