#include "server/acceptor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "grpcpp/server_posix.h"
#include "server/listeners.h"
#include "spdlog/spdlog.h"

namespace agate::server {
namespace {

// Unix peers by descriptor, for PeerUid: the socket's inode tells a reused descriptor apart.
struct UnixPeer {
  ino_t inode;
  uid_t uid;
};
absl::Mutex peers_mu;
absl::flat_hash_map<int, UnixPeer>& Peers() {
  static auto* peers = new absl::flat_hash_map<int, UnixPeer>();
  return *peers;
}

ino_t InodeOf(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

absl::StatusOr<int> ListenUnix(const ListenAddress& a, const AcceptorOptions& options) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return CannotListen(a, std::strerror(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, a.path.c_str(), sizeof(addr.sun_path) - 1);
  // The socket is born with the mode asked for: no moment where the umask's is in effect.
  const mode_t old_umask = umask(static_cast<mode_t>(~options.socket_mode & 0777));
  const int bound = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  umask(old_umask);
  if (bound != 0 || listen(fd, SOMAXCONN) != 0) {
    const std::string why = std::strerror(errno);
    close(fd);
    return CannotListen(a, why);
  }
  chmod(a.path.c_str(), options.socket_mode);
  if (!options.socket_group.empty()) {
    gid_t gid;
    if (const group* g = getgrnam(options.socket_group.c_str()); g != nullptr) {
      gid = g->gr_gid;
    } else if (!absl::SimpleAtoi(options.socket_group, &gid)) {
      close(fd);
      unlink(a.path.c_str());
      return absl::InvalidArgumentError(
          absl::StrCat("--socket-group ", options.socket_group, ": no such group"));
    }
    if (chown(a.path.c_str(), static_cast<uid_t>(-1), gid) != 0) {
      const std::string why = std::strerror(errno);
      close(fd);
      unlink(a.path.c_str());
      return CannotListen(
          a, absl::StrCat("cannot give the socket to group ", options.socket_group, ": ", why));
    }
  }
  return fd;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Acceptor>> Acceptor::Listen(const ListenAddress& address,
                                                           AcceptorOptions options) {
  int fd = -1;
  int port = 0;
  if (address.is_unix) {
    absl::StatusOr<int> unix_fd = ListenUnix(address, options);
    if (!unix_fd.ok()) return unix_fd.status();
    fd = *unix_fd;
  } else {
    absl::StatusOr<std::pair<int, int>> tcp = ListenTcp(address);
    if (!tcp.ok()) return tcp.status();
    std::tie(fd, port) = *tcp;
  }
  return std::unique_ptr<Acceptor>(new Acceptor(address, std::move(options), fd, port));
}

Acceptor::Acceptor(ListenAddress address, AcceptorOptions options, int fd, int port)
    : address_(std::move(address)), options_(std::move(options)), fd_(fd), port_(port) {
  if (pipe2(stop_pipe_, O_CLOEXEC) != 0) stop_pipe_[0] = stop_pipe_[1] = -1;
}

Acceptor::~Acceptor() {
  if (stop_pipe_[1] >= 0) (void)!write(stop_pipe_[1], "x", 1);
  if (thread_.joinable()) thread_.join();
  close(fd_);
  for (int p : stop_pipe_) {
    if (p >= 0) close(p);
  }
}

void Acceptor::Start(grpc::Server* server) {
  thread_ = std::thread([this, server] {
    pthread_setname_np(pthread_self(), "agate-accept");
    Run(server);
  });
}

int64_t Acceptor::open() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(connections_.size());
}

void Acceptor::Sweep() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    auto current = it++;
    if (InodeOf(current->first) != current->second) connections_.erase(current);
  }
}

void Acceptor::Run(grpc::Server* server) {
  absl::Time next_emfile_log = absl::InfinitePast();
  for (;;) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (poll(fds, 2, 1000) < 0 && errno != EINTR) return;
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & POLLIN) == 0) {
      absl::MutexLock lock(&mu_);
      Sweep();
      continue;
    }
    const int conn = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (conn < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        // Out of descriptors: wait for some to close and keep accepting.
        if (absl::Now() >= next_emfile_log) {
          spdlog::error("{}: out of file descriptors ({}); still accepting as they free up",
                        address_.ToString(port_), std::strerror(errno));
          next_emfile_log = absl::Now() + absl::Seconds(10);
        }
        pollfd stop = {stop_pipe_[0], POLLIN, 0};
        if (poll(&stop, 1, 100) > 0) return;
      }
      continue;
    }
    {
      absl::MutexLock lock(&mu_);
      if (options_.max_connections > 0 &&
          static_cast<int64_t>(connections_.size()) >= options_.max_connections) {
        Sweep();
      }
      if (options_.max_connections > 0 &&
          static_cast<int64_t>(connections_.size()) >= options_.max_connections) {
        close(conn);
        refused_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      connections_[conn] = InodeOf(conn);
    }
    if (address_.is_unix) {
      ucred cred{};
      socklen_t length = sizeof(cred);
      if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &length) == 0) {
        absl::MutexLock lock(&peers_mu);
        Peers()[conn] = UnixPeer{InodeOf(conn), cred.uid};
      }
    } else {
      const int one = 1;
      setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    grpc::AddInsecureChannelFromFd(server, conn);
  }
}

std::optional<uid_t> Acceptor::PeerUid(absl::string_view peer) {
  int fd;
  if (!absl::ConsumePrefix(&peer, "fd:") || !absl::SimpleAtoi(peer, &fd)) return std::nullopt;
  absl::MutexLock lock(&peers_mu);
  auto it = Peers().find(fd);
  if (it == Peers().end() || InodeOf(fd) != it->second.inode) return std::nullopt;
  return it->second.uid;
}

}  // namespace agate::server
