// agate_http: the webhook's HTTP(S) client, a module agate-server loads with dlopen only when
// --webhook is given (server/http_post.h).
//
// Why a module: Debian's libcpp-httplib calls OPENSSL_init_ssl from its library constructor,
// which loads OpenSSL's error strings into every process that links it, at start-up: 1.6 MB of
// resident memory in a server that posts no webhook.
#include <httplib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <type_traits>

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
