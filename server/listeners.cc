#include "server/listeners.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace agate::server {
namespace {

// ProbeUnix refuses a socket another server answers on, removes a stale one, and refuses to
// replace anything that is not a socket.
absl::Status ProbeUnix(const ListenAddress& a) {
  struct stat st;
  if (lstat(a.path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return CannotListen(a, std::strerror(errno));
  }
  if (!S_ISSOCK(st.st_mode)) return CannotListen(a, "the path exists and is not a socket");
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return CannotListen(a, std::strerror(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, a.path.c_str(), sizeof(addr.sun_path) - 1);
  const bool answered = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  if (answered) return CannotListen(a, "address already in use (a server answers on it)");
  if (unlink(a.path.c_str()) != 0) return CannotListen(a, std::strerror(errno));
  spdlog::info("removed stale socket {}", a.path);
  return absl::OkStatus();
}

}  // namespace

absl::Status CannotListen(const ListenAddress& a, absl::string_view why) {
  return absl::UnavailableError(absl::StrCat("cannot listen on ", a.ToString(a.port), ": ", why));
}

absl::StatusOr<std::pair<int, int>> ListenTcp(const ListenAddress& a) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(a.port);
  if (int rc = getaddrinfo(a.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return CannotListen(a, gai_strerror(rc));
  }
  std::string why = "no address";
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
      why = errno == EADDRINUSE ? "address already in use" : std::strerror(errno);
      close(fd);
      continue;
    }
    sockaddr_storage bound{};
    socklen_t length = sizeof(bound);
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
    const int chosen = bound.ss_family == AF_INET6
                           ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                           : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    freeaddrinfo(found);
    return std::make_pair(fd, chosen);
  }
  freeaddrinfo(found);
  return CannotListen(a, why);
}

absl::Status ProbeListenAddress(const ListenAddress& a) {
  if (a.is_unix) return ProbeUnix(a);
  if (a.port == 0) return absl::OkStatus();
  absl::StatusOr<std::pair<int, int>> listening = ListenTcp(a);
  if (!listening.ok()) return listening.status();
  close(listening->first);
  return absl::OkStatus();
}

}  // namespace agate::server
