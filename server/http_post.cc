#include "server/http_post.h"

#include <dlfcn.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace agate::server {
namespace {

std::string ExecutableDir() {
  std::string path(4096, '\0');
  const ssize_t n = readlink("/proc/self/exe", path.data(), path.size());
  if (n <= 0) return "";
  path.resize(static_cast<size_t>(n));
  return path.substr(0, path.rfind('/'));
}

absl::StatusOr<void*> LoadOnce() {
  std::vector<std::string> tried;
  std::vector<std::string> candidates = {ExecutableDir() + "/agate_http.so", AGATE_HTTP_MODULE};
  for (const std::string& path : candidates) {
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle != nullptr) return handle;
    const char* why = dlerror();
    tried.push_back(why != nullptr ? why : path);
  }
  return absl::FailedPreconditionError(
      absl::StrCat("cannot load the HTTP module agate_http.so (install it next to agate-server): ",
                   absl::StrJoin(tried, "; ")));
}

}  // namespace

absl::StatusOr<void*> HttpModuleSymbol(const char* name) {
  static const absl::StatusOr<void*>* const loaded = new absl::StatusOr<void*>(LoadOnce());
  if (!loaded->ok()) return loaded->status();
  void* symbol = dlsym(**loaded, name);
  if (symbol == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("the HTTP module agate_http.so has no ", name, " (an older build?)"));
  }
  return symbol;
}

absl::StatusOr<HttpPost> HttpPost::Load() {
  absl::StatusOr<void*> symbol = HttpModuleSymbol("agate_http_post");
  if (!symbol.ok()) return symbol.status();
  return HttpPost(reinterpret_cast<Function>(*symbol));
}

absl::StatusOr<int> HttpPost::Post(const std::string& scheme_host_port, const std::string& path,
                                   absl::string_view body, absl::Duration timeout) const {
  char error[256] = {0};
  const int status = function_(scheme_host_port.c_str(), path.c_str(), body.data(), body.size(),
                               absl::ToInt64Microseconds(timeout), error, sizeof(error));
  if (status < 0) return absl::UnavailableError(error);
  return status;
}

}  // namespace agate::server
