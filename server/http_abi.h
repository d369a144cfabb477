// The C interface between agate-server and the HTTP server inside the agate_http module
// (server/http_module.cc), which agate-server loads with dlopen only for --http-listen
// (server/http_post.h says why httplib lives in a module). Plain C types only: the module and the
// server agree on nothing else.
//
// The module owns the sockets and the threads (a bounded pool; read and write timeouts); for
// every request it calls the server's handler on one of its threads, which answers through the
// responder: once with a whole body, or with a stream. A stream's next is called again and again
// on that thread until it returns 0 (it should wait for data a bounded time, so that the end of
// the server or of the client is noticed), writes with write (0: the client is gone); release is
// called exactly once when the response is over, however it ended.
//
// Strings are NUL-terminated UTF-8 except the bodies, which carry their size.
#ifndef AGATE_SERVER_HTTP_ABI_H_
#define AGATE_SERVER_HTTP_ABI_H_

#include <stddef.h>
#include <stdint.h>

extern "C" {

struct agate_http_pair {
  const char* name;
  const char* value;
};

struct agate_http_request {
  const char* method;             // "GET", "POST", ...
  const char* path;               // decoded, without the query
  const agate_http_pair* params;  // the decoded query parameters
  size_t param_count;
  const agate_http_pair* headers;  // names as the client sent them
  size_t header_count;
  const char* body;
  size_t body_size;
  const char* remote;  // "ip:port"
  // Not 0 when the module refused the request itself before reading it (413: a body past
  // max_body_bytes; 400: not HTTP): the handler answers with the error body for that status.
  int refused_status;
};

struct agate_http_response;  // the module's

typedef int (*agate_http_write_fn)(void* sink, const char* data, size_t size);
typedef int (*agate_http_next_fn)(void* stream, agate_http_write_fn write, void* sink);
typedef void (*agate_http_release_fn)(void* stream);

struct agate_http_responder {
  void (*header)(agate_http_response* response, const char* name, const char* value);
  void (*body)(agate_http_response* response, int status, const char* content_type,
               const char* data, size_t size);
  void (*stream)(agate_http_response* response, int status, const char* content_type, void* stream,
                 agate_http_next_fn next, agate_http_release_fn release);
};

typedef void (*agate_http_handler_fn)(void* context, const agate_http_request* request,
                                      agate_http_response* response,
                                      const agate_http_responder* responder);

struct agate_http_config {
  const char* host;
  int port;          // 0: a free one
  const char* cert;  // PEM files; NULL: plaintext
  const char* key;
  int threads;
  int64_t read_timeout_us;
  int64_t write_timeout_us;
  int64_t keep_alive_timeout_us;
  size_t max_body_bytes;
  agate_http_handler_fn handler;
  void* context;
};

// agate_http_serve binds config's address and serves on the module's threads; returns the
// server (and the bound port in *port), or NULL with the reason in error.
typedef void* (*agate_http_serve_fn)(const agate_http_config* config, int* port, char* error,
                                     size_t error_size);
// agate_http_stop stops accepting, waits for the requests being served, and frees the server.
typedef void (*agate_http_stop_fn)(void* server);

}  // extern "C"

#endif  // AGATE_SERVER_HTTP_ABI_H_
