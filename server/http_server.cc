#include "server/http_server.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/http_post.h"

namespace agate::server {
namespace {

// Streaming: the HttpStream behind the C interface's stream callbacks.
int NextChunk(void* stream, agate_http_write_fn write, void* sink) {
  return static_cast<HttpStream*>(stream)->Next(
             [&](absl::string_view data) { return write(sink, data.data(), data.size()) != 0; })
             ? 1
             : 0;
}

void Release(void* stream) { delete static_cast<HttpStream*>(stream); }

}  // namespace

void HttpServer::Handle(void* context, const agate_http_request* request,
                        agate_http_response* response, const agate_http_responder* responder) {
  HttpRequest r;
  r.method = request->method;
  r.path = request->path;
  for (size_t i = 0; i < request->param_count; ++i) {
    r.params.emplace_back(request->params[i].name, request->params[i].value);
  }
  for (size_t i = 0; i < request->header_count; ++i) {
    r.headers.emplace_back(request->headers[i].name, request->headers[i].value);
  }
  r.body = absl::string_view(request->body, request->body_size);
  r.remote = request->remote;
  r.refused_status = request->refused_status;
  HttpAnswer answer = static_cast<HttpServer*>(context)->api_.Handle(r);
  for (const auto& [name, value] : answer.headers) {
    responder->header(response, name.c_str(), value.c_str());
  }
  if (answer.stream != nullptr) {
    responder->stream(response, answer.status, answer.content_type.c_str(), answer.stream.release(),
                      NextChunk, Release);
    return;
  }
  responder->body(response, answer.status, answer.content_type.c_str(), answer.body.data(),
                  answer.body.size());
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(HttpApi& api,
                                                              const HttpServerOptions& options) {
  absl::StatusOr<void*> serve = HttpModuleSymbol("agate_http_serve");
  if (!serve.ok()) return serve.status();
  absl::StatusOr<void*> stop = HttpModuleSymbol("agate_http_stop");
  if (!stop.ok()) return stop.status();
  std::unique_ptr<HttpServer> server(
      new HttpServer(api, reinterpret_cast<agate_http_stop_fn>(*stop)));
  const agate_http_config config = {
      .host = options.address.host.c_str(),
      .port = options.address.port,
      .cert = options.tls_cert.empty() ? nullptr : options.tls_cert.c_str(),
      .key = options.tls_key.empty() ? nullptr : options.tls_key.c_str(),
      .threads = options.threads,
      .read_timeout_us = absl::ToInt64Microseconds(options.read_timeout),
      .write_timeout_us = absl::ToInt64Microseconds(options.write_timeout),
      .keep_alive_timeout_us = absl::ToInt64Microseconds(options.keep_alive_timeout),
      .max_body_bytes = static_cast<size_t>(options.max_body_bytes),
      .handler = &HttpServer::Handle,
      .context = server.get(),
  };
  char error[512] = {0};
  server->server_ =
      reinterpret_cast<agate_http_serve_fn>(*serve)(&config, &server->port_, error, sizeof(error));
  if (server->server_ == nullptr) {
    return absl::UnavailableError(absl::StrCat("--http-listen: ", error));
  }
  return server;
}

void HttpServer::Stop() {
  if (server_ == nullptr) return;
  api_.Stop();
  stop_(std::exchange(server_, nullptr));
}

}  // namespace agate::server
