// The listener stays alive through the real server: connections exhausted (past
// --max-connections, or past the open-files limit) and then released, a new client is served
// within seconds; gRPC's idle and age limits close connections on the acceptor's listeners too,
// but never cut a WatchCases stream; `agate health` opens a new connection per probe.
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "agate/v1/agate.grpc.pb.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"

namespace agate {
namespace {

using ::agate::testing::RunResult;
using ::agate::testing::ServerProcess;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kMatrix[] = AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml";

// RawConnect opens a TCP connection to "127.0.0.1:PORT" that never speaks (an idle attacker);
// -1 if connect failed.
int RawConnect(const std::string& address) {
  int port = 0;
  const std::vector<std::string> parts = absl::StrSplit(address, ':');
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[1], &port)) return -1;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// ClosedByPeer tells whether the server has closed a raw connection (it was refused).
bool ClosedByPeer(int fd) {
  pollfd p = {fd, POLLIN | POLLRDHUP, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  char byte;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0 ||
         recv(fd, &byte, 1, MSG_DONTWAIT | MSG_PEEK) == 0;
}

// HoldConnections opens n idle raw connections that the server has accepted and holds. A
// connection of a previous client that the server has not yet seen close still takes a slot,
// so one refused here is opened again until all n are held (or 5 s pass).
std::vector<int> HoldConnections(const std::string& address, int n) {
  std::vector<int> held;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline) {
    while (static_cast<int>(held.size()) < n) {
      const int fd = RawConnect(address);
      if (fd < 0) return held;
      held.push_back(fd);
    }
    absl::SleepFor(absl::Milliseconds(300));  // the acceptor takes them, or refuses some
    const auto closed =
        std::partition(held.begin(), held.end(), [](int fd) { return !ClosedByPeer(fd); });
    std::for_each(closed, held.end(), [](int fd) { close(fd); });
    held.erase(closed, held.end());
    if (static_cast<int>(held.size()) == n) break;
  }
  return held;
}

v1::EvaluateRequest Allow(const std::string& id) {
  v1::EvaluateRequest r;
  r.set_request_id(id);
  r.set_tenant_id("t1");
  r.mutable_action()->set_type("send_reply");
  return r;
}

// ServedWithin tells whether a new client (a new channel: a new connection) gets a real answer
// within timeout, retrying; *took says how long it took.
bool ServedWithin(const std::string& address, absl::Duration timeout, absl::Duration* took) {
  const absl::Time start = absl::Now();
  for (int i = 0; absl::Now() - start < timeout; ++i) {
    auto c = client::Client::Create({.target = address, .timeout = absl::Milliseconds(500)});
    if (!c.ok()) return false;
    absl::StatusOr<v1::EvaluateResponse> r = (*c)->Evaluate(Allow(absl::StrCat("probe", i)));
    if (r.ok() && !r->failed_closed()) {
      *took = absl::Now() - start;
      return true;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return false;
}

// Refused tells whether a new client gets no answer (it fails closed).
bool Refused(const std::string& address) {
  auto c = client::Client::Create({.target = address, .timeout = absl::Seconds(1)});
  absl::StatusOr<v1::EvaluateResponse> r = (*c)->Evaluate(Allow("refused"));
  return r.ok() && r->failed_closed();
}

TEST(ConnectionsE2eTest, PastMaxConnectionsNewOnesAreRefusedAndServedAgainOnceOthersClose) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(AGATE_SERVER_BIN, {"--matrix", kMatrix, "--listen", "127.0.0.1:0",
                                              "--store", "memory", "--max-connections", "8"}))
      << server.log();
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    const std::vector<int> idle = HoldConnections(server.address(), 8);
    ASSERT_EQ(idle.size(), 8u) << server.log();
    EXPECT_TRUE(Refused(server.address()));
    for (int fd : idle) close(fd);
    absl::Duration took;
    ASSERT_TRUE(ServedWithin(server.address(), absl::Seconds(5), &took));
    EXPECT_LT(took, absl::Seconds(5));
  }
}

TEST(ConnectionsE2eTest, OutOfFileDescriptorsTheListenerServesAgainOnceTheyFree) {
  // A hard limit of 64 open files (agate-server raises the soft one to it) and no connection
  // bound below it: the attacker's idle connections run the process out of descriptors.
  ServerProcess server;
  ASSERT_TRUE(server.Start("/usr/bin/prlimit",
                           {"--nofile=64:64", AGATE_SERVER_BIN, "--matrix", kMatrix, "--listen",
                            "127.0.0.1:0", "--store", "memory", "--max-connections", "1000"}))
      << server.log();
  std::vector<int> idle;
  for (int i = 0; i < 100; ++i) idle.push_back(RawConnect(server.address()));
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (server.log().find("out of file descriptors") == std::string::npos &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_THAT(server.log(), HasSubstr("out of file descriptors"));
  EXPECT_TRUE(Refused(server.address()));
  for (int fd : idle) close(fd);
  absl::Duration took;
  ASSERT_TRUE(ServedWithin(server.address(), absl::Seconds(5), &took)) << server.log();
  EXPECT_LT(took, absl::Seconds(5));
}

TEST(ConnectionsE2eTest, AConnectionWithNoCallIsClosedPastTheIdleLimit) {
  ServerProcess server;
  ASSERT_TRUE(
      server.Start(AGATE_SERVER_BIN, {"--matrix", kMatrix, "--listen", "127.0.0.1:0", "--store",
                                      "memory", "--max-connection-idle", "500ms"}))
      << server.log();
  auto channel = grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials());
  ASSERT_TRUE(channel->WaitForConnected(absl::ToChronoTime(absl::Now() + absl::Seconds(5))));
  // The server sends GOAWAY: the channel leaves READY.
  EXPECT_TRUE(channel->WaitForStateChange(GRPC_CHANNEL_READY,
                                          absl::ToChronoTime(absl::Now() + absl::Seconds(5))))
      << "the idle connection stayed open";
}

TEST(ConnectionsE2eTest, AWatchStreamOutlivesTheIdleAndAgeLimits) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(AGATE_SERVER_BIN,
                           {"--matrix", kMatrix, "--listen", "127.0.0.1:0", "--store", "memory",
                            "--max-connection-idle", "500ms", "--max-connection-age", "1s"}))
      << server.log();
  auto watching = client::Client::Create({.target = server.address()});
  grpc::ClientContext watch_context;
  watch_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  auto watcher = (*watching)->stub().WatchCases(&watch_context, v1::WatchCasesRequest());
  // The stream is a call (not idle), and with no grace period (the default) it finishes on its
  // connection after the GOAWAY of the age limit.
  absl::SleepFor(absl::Milliseconds(2500));
  v1::EvaluateRequest refund = Allow("refund");
  refund.mutable_action()->set_type("refund");
  refund.mutable_action()->set_amount(400);
  auto other = client::Client::Create({.target = server.address(), .timeout = absl::Seconds(5)});
  ASSERT_EQ((*other)->Evaluate(refund)->verdict(), v1::VERDICT_BLOCK);
  v1::CaseEvent event;
  ASSERT_TRUE(watcher->Read(&event)) << "the watch stream was cut";
  EXPECT_EQ(event.transition().event(), "opened");
  watch_context.TryCancel();
  while (watcher->Read(&event)) {
  }
  watcher->Finish();
}

TEST(ConnectionsE2eTest, WithoutAnIdleLimitAConnectionStaysOpen) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(AGATE_SERVER_BIN, {"--matrix", kMatrix, "--listen", "127.0.0.1:0",
                                              "--store", "memory", "--max-connection-idle", "off"}))
      << server.log();
  auto channel = grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials());
  ASSERT_TRUE(channel->WaitForConnected(absl::ToChronoTime(absl::Now() + absl::Seconds(5))));
  EXPECT_FALSE(channel->WaitForStateChange(GRPC_CHANNEL_READY,
                                           absl::ToChronoTime(absl::Now() + absl::Seconds(2))));
}

TEST(ConnectionsE2eTest, RefusesConnectionLimitsThatAreNotDurations) {
  for (const char* flag :
       {"--max-connection-idle", "--max-connection-age", "--max-connection-age-grace"}) {
    for (const char* value : {"0", "-1s", "50ms", "soon"}) {
      const RunResult r = testing::Run({AGATE_SERVER_BIN, "--matrix", kMatrix, flag, value});
      EXPECT_EQ(r.exit_code, 2) << flag << " " << value;
      EXPECT_THAT(r.err, HasSubstr(flag)) << r.err;
    }
  }
}

TEST(ConnectionsE2eTest, AgateHealthSaysServingOrExitsOne) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(AGATE_SERVER_BIN,
                           {"--matrix", kMatrix, "--listen", "127.0.0.1:0", "--store", "memory"}))
      << server.log();
  RunResult r = testing::Run({AGATE_CLI_BIN, "health", "--server", server.address()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, StartsWith(absl::StrCat("agate health: ", server.address(), ": SERVING (")));
  r = testing::Run({AGATE_CLI_BIN, "health", "--server", server.address(), "--service", "nope"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("NOT_FOUND"));  // gRPC's health service: an unknown service
  const std::string address = server.address();
  server.Signal(SIGTERM);
  ASSERT_EQ(server.Wait(), 0);
  r = testing::Run({AGATE_CLI_BIN, "health", "--server", address, "--timeout", "2s"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, StartsWith(absl::StrCat("agate health: ", address, ": UNAVAILABLE: ")));
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
}

}  // namespace
}  // namespace agate
