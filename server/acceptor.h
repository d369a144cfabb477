// Acceptor: agate accepts the connections of its plaintext listeners (Unix sockets, loopback TCP)
// itself and hands each one to gRPC (grpc::AddInsecureChannelFromFd). So it knows each
// connection's peer — the uid of a Unix-socket peer (SO_PEERCRED), an identity the access policy
// can name ("uid:1000") — it bounds the connections (past max_connections a new one is closed at
// once, counted), and it keeps accepting when the process runs out of file descriptors (EMFILE:
// it waits and retries, where gRPC 1.51's own acceptor stops accepting for good).
//
// A Unix socket is created with socket_mode (chmod) and, if given, socket_group (chown).
// TLS listeners stay gRPC's (it has no TLS-from-descriptor API in 1.51).
//
// Thread-safe. One thread per acceptor accepts; PeerUid may be called from any thread.
//
// Example:
//   ASSIGN_OR_RETURN(std::unique_ptr<Acceptor> a, Acceptor::Listen(address, {}));
//   ... build and start the grpc::Server ...
//   a->Start(server.get());
#ifndef AGATE_SERVER_ACCEPTOR_H_
#define AGATE_SERVER_ACCEPTOR_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/listen_address.h"
#include "grpcpp/server.h"

namespace agate::server {

struct AcceptorOptions {
  // Connections open at once through this acceptor at most; 0: no bound.
  int64_t max_connections = 0;
  // For a Unix socket: its permission bits, and its group ("" : the process's).
  mode_t socket_mode = 0660;
  std::string socket_group;
};

class Acceptor {
 public:
  // Listen binds and listens on address (a Unix socket, or TCP: port 0 picks a free port).
  // UNAVAILABLE "cannot listen on ADDR: ..." otherwise; INVALID_ARGUMENT for an unknown group.
  static absl::StatusOr<std::unique_ptr<Acceptor>> Listen(const ListenAddress& address,
                                                          AcceptorOptions options);
  // Stops accepting and closes the listening socket (connections already handed over stay).
  ~Acceptor();

  // port returns the TCP port listened on (0 for a Unix socket).
  int port() const { return port_; }
  // Start accepts connections on a new thread and hands them to server (started, and alive until
  // the acceptor is destroyed).
  void Start(grpc::Server* server);

  // PeerUid returns the uid of the peer of the connection gRPC calls peer (a context's peer(),
  // "fd:N" for connections handed over), if it is a Unix-socket connection an acceptor took.
  static std::optional<uid_t> PeerUid(absl::string_view peer);

  // refused returns how many connections were closed because max_connections were open.
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }
  // open returns the connections open now (as of the last sweep).
  int64_t open() const;

 private:
  Acceptor(ListenAddress address, AcceptorOptions options, int fd, int port);
  void Run(grpc::Server* server);
  // Sweep forgets connections gRPC has closed (their descriptor is gone or is another socket).
  void Sweep() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ListenAddress address_;
  const AcceptorOptions options_;
  const int fd_;
  const int port_;
  int stop_pipe_[2] = {-1, -1};
  std::thread thread_;
  std::atomic<uint64_t> refused_{0};
  mutable absl::Mutex mu_;
  // The connections handed over: descriptor -> its socket's inode.
  absl::flat_hash_map<int, ino_t> connections_ ABSL_GUARDED_BY(mu_);
};

}  // namespace agate::server

#endif  // AGATE_SERVER_ACCEPTOR_H_
