// TlsFiles: agate-server's TLS certificate, key and client CAs, re-read without a restart.
//
// gRPC serves TLS from files it watches itself (FileWatcherCertificateProvider, refreshed every
// second). agate never points it at the operator's files: it checks a new certificate first
// (the PEM parses, the key matches the certificate, the CAs parse) and only then copies the
// three files into a private directory (0700) that gRPC watches, each by an atomic rename. So a
// bad new certificate — half-written, mismatched, garbage — keeps the old one serving, and says
// why. Reload runs on SIGHUP; Poll (with --watch) reloads when a file changed and stayed the
// same for one more poll.
//
// Thread-safe.
//
// Example:
//   ASSIGN_OR_RETURN(std::unique_ptr<TlsFiles> tls, TlsFiles::Create({.cert = "server.pem",
//                                                                     .key = "server.key"}));
//   builder.AddListeningPort(addr, tls->ServerCredentials(/*require_client_cert=*/false), &port);
#ifndef AGATE_SERVER_TLS_H_
#define AGATE_SERVER_TLS_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/file_watch.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/security/tls_certificate_provider.h"

namespace agate::server {

struct TlsFileOptions {
  std::string cert;       // PEM certificate chain
  std::string key;        // PEM private key
  std::string client_ca;  // PEM CAs for client certificates; "" : no mutual TLS
};

class TlsFiles {
 public:
  // Create checks the files and prepares the private copy. INVALID_ARGUMENT naming the file and
  // what is wrong with it.
  static absl::StatusOr<std::unique_ptr<TlsFiles>> Create(TlsFileOptions options);
  ~TlsFiles();

  // ServerCredentials returns credentials for a listener: TLS, and with client CAs mutual TLS that
  // verifies a presented certificate (and refuses a connection without one when
  // require_client_cert).
  std::shared_ptr<grpc::ServerCredentials> ServerCredentials(bool require_client_cert) const;

  // Reload checks the operator's files and, when they are good, swaps them in (gRPC picks them up
  // within a second). A bad file keeps the old ones: INVALID_ARGUMENT naming it.
  absl::Status Reload() ABSL_LOCKS_EXCLUDED(mu_);
  // Poll reloads once the files changed and then stayed the same for one poll; nullopt when it
  // did not reload.
  std::optional<absl::Status> Poll() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  TlsFiles(TlsFileOptions options, std::string dir);
  absl::Status ReloadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ReloadAndLog() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const TlsFileOptions options_;
  const std::string dir_;  // the private copy gRPC watches
  std::shared_ptr<grpc::experimental::CertificateProviderInterface> provider_;
  absl::Mutex mu_;
  FileWatch watch_ ABSL_GUARDED_BY(mu_);
};

// CheckTlsFiles reads and checks cert, key and (if not empty) client_ca; returns their contents
// in that order, or INVALID_ARGUMENT naming the file.
absl::StatusOr<std::vector<std::string>> CheckTlsFiles(const TlsFileOptions& options);

}  // namespace agate::server

#endif  // AGATE_SERVER_TLS_H_
