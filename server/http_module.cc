// agate_http: the webhook's HTTP(S) client and the HTTP(S) server of --http-listen, a module
// agate-server loads with dlopen only when --webhook or --http-listen is given
// (server/http_post.h, server/http_abi.h).
//
// Why a module: Debian's libcpp-httplib calls OPENSSL_init_ssl from its library constructor,
// which loads OpenSSL's error strings into every process that links it, at start-up: 1.6 MB of
// resident memory in a server that posts no webhook.
#include <httplib.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "server/http_abi.h"
#include "server/http_post.h"

extern "C" __attribute__((visibility("default"))) int agate_http_post(
    const char* scheme_host_port, const char* path, const char* body, size_t body_size,
    int64_t timeout_us, char* error, size_t error_size) {
  try {
    httplib::Client client(scheme_host_port);
    const time_t seconds = static_cast<time_t>(timeout_us / 1'000'000);
    const time_t micros = static_cast<time_t>(timeout_us % 1'000'000);
    client.set_connection_timeout(seconds, micros);
    client.set_read_timeout(seconds, micros);
    client.set_write_timeout(seconds, micros);
    httplib::Result result = client.Post(path, body, body_size, "application/json");
    if (!result) {
      std::snprintf(error, error_size, "%s", httplib::to_string(result.error()).c_str());
      return -1;
    }
    return result->status;
  } catch (const std::exception& e) {
    std::snprintf(error, error_size, "%s", e.what());
    return -1;
  }
}

// The symbol's type is the one http_post.cc calls through.
static_assert(std::is_same_v<decltype(&agate_http_post), agate::server::HttpPost::Function>);

namespace {

// A running server: httplib's and the thread that accepts connections.
struct Serving {
  std::unique_ptr<httplib::Server> server;
  std::thread listener;
};

// What the responder's callbacks get as agate_http_response: the response, and the request it
// answers.
struct Exchange {
  const httplib::Request& req;
  httplib::Response& res;
};

Exchange& ExchangeOf(agate_http_response* response) {
  return *reinterpret_cast<Exchange*>(response);
}

void Header(agate_http_response* response, const char* name, const char* value) {
  ExchangeOf(response).res.set_header(name, value);
}

// Compressible tells whether a body of this type and size is worth compressing.
bool Compressible(const char* content_type, size_t size) {
  const std::string type = content_type;
  return size >= 1024 && (type.rfind("text/", 0) == 0 || type.rfind("application/json", 0) == 0 ||
                          type.rfind("image/svg+xml", 0) == 0);
}

// AcceptsGzip tells whether the request's Accept-Encoding names gzip (without q=0).
bool AcceptsGzip(const httplib::Request& req) {
  const std::string accept = req.get_header_value("Accept-Encoding");
  for (size_t at = accept.find("gzip"); at != std::string::npos; at = accept.find("gzip", at + 4)) {
    const size_t end = accept.find(',', at);
    const std::string params = accept.substr(at + 4, end == std::string::npos ? end : end - at - 4);
    if (params.find("q=0") == std::string::npos || params.find("q=0.") != std::string::npos) {
      return true;
    }
  }
  return false;
}

// Gzip compresses data at zlib's level 6; false on a zlib error.
bool Gzip(std::string& data, std::string* out) {
  z_stream z{};
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return false;
  out->resize(deflateBound(&z, data.size()));
  z.next_in = reinterpret_cast<Bytef*>(data.data());
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out->data());
  z.avail_out = static_cast<uInt>(out->size());
  const int result = deflate(&z, Z_FINISH);
  out->resize(z.total_out);
  deflateEnd(&z);
  return result == Z_STREAM_END;
}

// Body answers with a whole body. httplib would compress it itself, with brotli at its highest
// quality when the client accepts br (Chromium does): 13 s for a 1.6 MB ListCases page on this
// machine, a thread and a core held all along. It would also cut a body to a Range header's
// bytes but keep our status (a fragment sent as a 200). So the body goes as a content provider
// of known length, which httplib neither compresses nor cuts unless we say so: gzip at level 6
// here when the client accepts it (about 10 ms for that page), and for a Range on a 200 the
// status is left to httplib, which answers 206 with exactly the bytes asked for.
void Body(agate_http_response* response, int status, const char* content_type, const char* data,
          size_t size) {
  auto& [req, res] = ExchangeOf(response);
  res.status = status;
  res.set_header("Vary", "Accept-Encoding");
  if (size == 0) {
    res.set_content(data, size, content_type);
    return;
  }
  auto body = std::make_shared<std::string>(data, size);
  if (!req.ranges.empty()) {
    if (status != 200) {
      // An error is never cut: httplib sends chunks whole.
      res.set_chunked_content_provider(content_type, [body](size_t, httplib::DataSink& sink) {
        if (!sink.write(body->data(), body->size())) return false;  // the client is gone
        sink.done();
        return true;
      });
      return;
    }
    res.status = -1;  // httplib: 206 and the ranges' bytes (of the identity body)
  } else if (Compressible(content_type, size) && AcceptsGzip(req)) {
    auto compressed = std::make_shared<std::string>();
    if (Gzip(*body, compressed.get())) {
      body = std::move(compressed);
      res.set_header("Content-Encoding", "gzip");
    }
  }
  res.set_content_provider(body->size(), content_type,
                           [body](size_t offset, size_t length, httplib::DataSink& sink) {
                             return sink.write(body->data() + offset, length);
                           });
}

int SinkWrite(void* sink, const char* data, size_t size) {
  return reinterpret_cast<httplib::DataSink*>(sink)->write(data, size) ? 1 : 0;
}

void Stream(agate_http_response* response, int status, const char* content_type, void* stream,
            agate_http_next_fn next, agate_http_release_fn release) {
  httplib::Response& res = ExchangeOf(response).res;
  res.status = status;
  res.set_chunked_content_provider(
      content_type,
      [stream, next](size_t, httplib::DataSink& sink) {
        if (next(stream, SinkWrite, &sink) != 0) return true;
        sink.done();
        return true;
      },
      [stream, release](bool) { release(stream); });
}

constexpr agate_http_responder kResponder = {Header, Body, Stream};

// Call hands one request to the server's handler.
void Call(const agate_http_config& config, const httplib::Request& req, httplib::Response& res,
          int refused_status) {
  // The query's parameters only: httplib adds a form-encoded body's to req.params.
  httplib::Params query;
  if (const size_t mark = req.target.find('?'); mark != std::string::npos) {
    httplib::detail::parse_query_text(req.target.substr(mark + 1), query);
  }
  std::vector<agate_http_pair> params;
  for (const auto& [name, value] : query) params.push_back({name.c_str(), value.c_str()});
  std::vector<agate_http_pair> headers;
  for (const auto& [name, value] : req.headers) headers.push_back({name.c_str(), value.c_str()});
  const std::string remote = req.remote_addr + ":" + std::to_string(req.remote_port);
  const agate_http_request request = {
      req.method.c_str(), req.path.c_str(), params.data(),   params.size(),  headers.data(),
      headers.size(),     req.body.data(),  req.body.size(), remote.c_str(), refused_status};
  Exchange exchange{req, res};
  config.handler(config.context, &request, reinterpret_cast<agate_http_response*>(&exchange),
                 &kResponder);
}

}  // namespace

extern "C" __attribute__((visibility("default"))) void* agate_http_serve(
    const agate_http_config* config, int* port, char* error, size_t error_size) {
  try {
    auto serving = std::make_unique<Serving>();
    if (config->cert != nullptr) {
      serving->server = std::make_unique<httplib::SSLServer>(config->cert, config->key);
    } else {
      serving->server = std::make_unique<httplib::Server>();
    }
    httplib::Server& server = *serving->server;
    if (!server.is_valid()) {
      std::snprintf(error, error_size, "cannot use the TLS certificate %s and key %s", config->cert,
                    config->key);
      return nullptr;
    }
    const agate_http_config c = *config;
    const size_t threads = static_cast<size_t>(c.threads);
    server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    server.set_read_timeout(c.read_timeout_us / 1'000'000, c.read_timeout_us % 1'000'000);
    server.set_write_timeout(c.write_timeout_us / 1'000'000, c.write_timeout_us % 1'000'000);
    server.set_keep_alive_timeout(std::max<time_t>(1, c.keep_alive_timeout_us / 1'000'000));
    server.set_payload_max_length(c.max_body_bytes);
    // SO_REUSEADDR, not httplib's default SO_REUSEPORT too: a second server on a port in use
    // must fail to start, not share the port.
    server.set_socket_options([](socket_t sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    const httplib::Server::Handler handler = [c](const httplib::Request& req,
                                                 httplib::Response& res) { Call(c, req, res, 0); };
    server.Get(".*", handler);
    server.Post(".*", handler);
    server.Put(".*", handler);
    server.Patch(".*", handler);
    server.Delete(".*", handler);
    server.Options(".*", handler);
    // What httplib refused itself (a body past the bound, a request that is not HTTP) gets the
    // server's error body too.
    server.set_error_handler(httplib::Server::HandlerWithResponse(
        [c](const httplib::Request& req, httplib::Response& res) {
          if (!res.body.empty() || res.content_provider_ != nullptr) {
            return httplib::Server::HandlerResponse::Unhandled;
          }
          const int status = res.status;
          Call(c, req, res, status);
          res.status = status;
          return httplib::Server::HandlerResponse::Handled;
        }));
    const std::string host = c.host;
    if (c.port == 0) {
      *port = server.bind_to_any_port(host);
    } else {
      *port = server.bind_to_port(host, c.port) ? c.port : -1;
    }
    if (*port < 0) {
      std::snprintf(error, error_size, "cannot listen on %s:%d: %s", c.host, c.port,
                    std::strerror(errno));
      return nullptr;
    }
    serving->listener = std::thread([&server] { server.listen_after_bind(); });
    // stop() does nothing until the server runs: wait for it, so that a stop cannot be lost.
    for (int i = 0; i < 5000 && !server.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return serving.release();
  } catch (const std::exception& e) {
    std::snprintf(error, error_size, "%s", e.what());
    return nullptr;
  }
}

extern "C" __attribute__((visibility("default"))) void agate_http_stop(void* handle) {
  std::unique_ptr<Serving> serving(static_cast<Serving*>(handle));
  serving->server->stop();
  if (serving->listener.joinable()) serving->listener.join();
}

static_assert(std::is_same_v<decltype(&agate_http_serve), agate_http_serve_fn>);
static_assert(std::is_same_v<decltype(&agate_http_stop), agate_http_stop_fn>);
