// ListenAddress: where a server listens, as agate's command lines write it: "host:port",
// "[v6]:port" or "unix:PATH". Shared by agate-server and the benchmark's no-op server.
#ifndef AGATE_COMMON_LISTEN_ADDRESS_H_
#define AGATE_COMMON_LISTEN_ADDRESS_H_

#include <string>

#include "absl/status/statusor.h"

namespace agate {

struct ListenAddress {
  bool is_unix = false;
  std::string host;  // TCP: "127.0.0.1", "::1", "localhost"
  int port = 0;      // TCP: 0 picks a free port
  std::string path;  // unix
  // grpc_uri is what gRPC's AddListeningPort takes.
  std::string grpc_uri() const;
  // ToString prints it as the user wrote it, with a chosen port.
  std::string ToString(int chosen_port) const;
};

// ParseListenAddress accepts "host:port", "[v6]:port" and "unix:PATH". INVALID_ARGUMENT naming
// --listen and the text otherwise.
absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& text);

}  // namespace agate

#endif  // AGATE_COMMON_LISTEN_ADDRESS_H_
