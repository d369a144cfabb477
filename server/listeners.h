// Listeners: checks on the addresses agate-server listens on, before gRPC binds them.
//
// gRPC's BuildAndStart only says "failed" when a port is busy, and (with SO_REUSEPORT off, as
// agate sets it) a busy address must be a clear start-up error; a Unix socket left by a crashed
// server must be replaced, one another server answers on must not.
#ifndef AGATE_SERVER_LISTENERS_H_
#define AGATE_SERVER_LISTENERS_H_

#include "absl/status/status.h"
#include "common/listen_address.h"

namespace agate::server {

// ProbeListenAddress returns OK when a can be listened on: a TCP address binds (port 0 is not
// probed), a Unix socket path is free or holds a stale socket (which it removes). UNAVAILABLE
// "cannot listen on ADDR: address already in use" (or the reason) otherwise.
absl::Status ProbeListenAddress(const ListenAddress& a);

}  // namespace agate::server

#endif  // AGATE_SERVER_LISTENERS_H_
