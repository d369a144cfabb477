// Listeners: checks on the addresses agate-server listens on, before gRPC binds them.
//
// gRPC's BuildAndStart only says "failed" when a port is busy, and (with SO_REUSEPORT off, as
// agate sets it) a busy address must be a clear start-up error; a Unix socket left by a crashed
// server must be replaced, one another server answers on must not.
#ifndef AGATE_SERVER_LISTENERS_H_
#define AGATE_SERVER_LISTENERS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/listen_address.h"

namespace agate::server {

// ProbeListenAddress returns OK when a can be listened on: a TCP address binds (port 0 is not
// probed), a Unix socket path is free or holds a stale socket (which it removes). UNAVAILABLE
// "cannot listen on ADDR: address already in use" (or the reason) otherwise.
// (It binds and listens with ListenTcp, then closes.)
absl::Status ProbeListenAddress(const ListenAddress& a);

// ListenTcp binds (SO_REUSEADDR, never SO_REUSEPORT) and listens on the first of a's resolved
// addresses that takes it; returns the descriptor and the port bound (port 0 picks one).
absl::StatusOr<std::pair<int, int>> ListenTcp(const ListenAddress& a);

// CannotListen is UNAVAILABLE "cannot listen on ADDR: why".
absl::Status CannotListen(const ListenAddress& a, absl::string_view why);

}  // namespace agate::server

#endif  // AGATE_SERVER_LISTENERS_H_
