// HttpServer: serves an HttpApi on --http-listen, through the agate_http module's HTTP server
// (server/http_abi.h), which agate-server loads with dlopen only then (server/http_post.h).
//
// The module's threads are bounded (threads), every request has read and write timeouts, and a
// body past max_body_bytes is refused 413 before it is read. Stop ends the watch streams
// (HttpApi::Stop), stops accepting, and waits for the requests being served.
//
// Example:
//   ASSIGN_OR_RETURN(std::unique_ptr<HttpServer> http,
//                    HttpServer::Start(http_api, {.address = address, .threads = 16}));
//   spdlog::info("serving HTTP on {}", address.ToString(http->port()));
#ifndef AGATE_SERVER_HTTP_SERVER_H_
#define AGATE_SERVER_HTTP_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/listen_address.h"
#include "server/http_abi.h"
#include "server/http_api.h"

namespace agate::server {

struct HttpServerOptions {
  ListenAddress address;  // TCP
  std::string tls_cert;   // PEM files; empty: plaintext
  std::string tls_key;
  int threads = 16;
  absl::Duration read_timeout = absl::Seconds(10);
  absl::Duration write_timeout = absl::Seconds(10);
  absl::Duration keep_alive_timeout = absl::Seconds(2);
  int64_t max_body_bytes = 1 << 20;
};

class HttpServer {
 public:
  // Start loads the module and listens; FAILED_PRECONDITION when the module cannot be loaded,
  // UNAVAILABLE when the address cannot be bound or the TLS files used. api must outlive the
  // server.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(HttpApi& api,
                                                           const HttpServerOptions& options);
  ~HttpServer() { Stop(); }
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  // Stop is idempotent.
  void Stop();

 private:
  HttpServer(HttpApi& api, agate_http_stop_fn stop) : api_(api), stop_(stop) {}
  static void Handle(void* context, const agate_http_request* request,
                     agate_http_response* response, const agate_http_responder* responder);

  HttpApi& api_;
  agate_http_stop_fn stop_;
  void* server_ = nullptr;
  int port_ = 0;
};

}  // namespace agate::server

#endif  // AGATE_SERVER_HTTP_SERVER_H_
