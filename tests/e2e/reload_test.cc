// End to end: hot reload of the matrix (SIGHUP and --watch) in the real agate-server while
// clients keep calling it, and the overload bound (--max-in-flight).
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "agate/v1/agate.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"
#include "tests/testing/reload_matrices.h"

namespace agate {
namespace {

using ::agate::testing::ReloadMatrix;
using ::agate::testing::ServerProcess;
using ::testing::HasSubstr;
using ::testing::IsSubsetOf;
using ::testing::MatchesRegex;

// Two valid matrices that disagree about the probe (a $200 refund): A allows it, B blocks it.
const std::string kMatrixA = ReloadMatrix("10", /*strict=*/false);
const std::string kMatrixB = ReloadMatrix("11", /*strict=*/true);
// What a reload must refuse: structural errors, an empty file, a file cut short mid-write.
const std::string kInvalid[] = {
    "version: 12\nlanes:\n  financial: {owner: a, sla: 30x, verdict: BLOCKK}\ntriggers: []\n",
    "",
    kMatrixB.substr(0, kMatrixB.find("sla:")),
};

// WriteInPlace truncates and rewrites the file (same inode); Replace renames a new file over it.
void WriteInPlace(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}
void Replace(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".new";
  std::ofstream(tmp, std::ios::trunc) << text;
  ASSERT_EQ(rename(tmp.c_str(), path.c_str()), 0);
}

v1::EvaluateRequest Probe(const std::string& id) {
  v1::EvaluateRequest r;
  r.set_request_id(id);
  r.set_tenant_id("t1");
  r.set_workflow_id("refunds");
  r.set_item_id("order-1");
  r.mutable_action()->set_type("refund");
  r.mutable_action()->set_amount(200);
  return r;
}

std::unique_ptr<v1::Agate::Stub> NewStub(const std::string& address, int connection = 0) {
  grpc::ChannelArguments args;
  args.SetInt("agate.test.connection", connection);  // distinct args: a connection of its own
  return v1::Agate::NewStub(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
}

grpc::Status Call(v1::Agate::Stub& stub, const v1::EvaluateRequest& request,
                  v1::EvaluateResponse* response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return stub.Evaluate(&context, request, response);
}

// Occurrences counts needle in text.
int Occurrences(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// WaitForLog waits (bounded) until the server's log holds needle `count` times.
bool WaitForLog(ServerProcess& server, const std::string& needle, int count) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    if (Occurrences(server.log(), needle) >= count) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

// Hammer calls Evaluate from several threads, each on its own connection, until Stop.
class Hammer {
 public:
  Hammer(const std::string& address, int threads) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, address, t] {
        std::unique_ptr<v1::Agate::Stub> stub = NewStub(address, t);
        for (int i = 0; !stop_.load(); ++i) {
          // Unique request ids: a repeated one would replay an earlier decision.
          v1::EvaluateRequest request = Probe(absl::StrCat("load-", t, "-", i));
          if (i % 2 == 1) request.mutable_action()->set_type("send_reply");
          v1::EvaluateResponse response;
          const grpc::Status status = Call(*stub, request, &response);
          absl::MutexLock lock(&mu_);
          ++calls_;
          if (!status.ok()) {
            errors_.push_back(absl::StrCat(status.error_code(), ": ", status.error_message()));
          } else {
            versions_.insert(response.matrix_version());
          }
        }
      });
    }
  }
  void Stop() {
    stop_ = true;
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }
  ~Hammer() { Stop(); }

  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  std::vector<std::string> errors() {
    absl::MutexLock lock(&mu_);
    return errors_;
  }
  std::set<std::string> versions() {
    absl::MutexLock lock(&mu_);
    return versions_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  absl::Mutex mu_;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> errors_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> versions_ ABSL_GUARDED_BY(mu_);
};

TEST(ReloadE2eTest, SighupSwapsTheMatrixUnderLoadWithoutAFailedCall) {
  const testing::TempDir dir;
  const std::string path = dir.path() + "/matrix.yaml";
  WriteInPlace(path, kMatrixA);
  ServerProcess server;
  ASSERT_TRUE(server.Start(AGATE_SERVER_BIN, {"--matrix", path, "--listen", "127.0.0.1:0"}))
      << server.log();
  std::unique_ptr<v1::Agate::Stub> probe = NewStub(server.address(), 100);

  Hammer hammer(server.address(), 4);
  int good = 0, bad = 0;
  std::string last_good_version = "10";
  constexpr int kRounds = 23;
  for (int round = 0; round < kRounds; ++round) {
    // Every fourth write is invalid; the valid ones alternate between B and A, ending on B.
    const bool invalid = round % 4 == 2;
    if (invalid) {
      WriteInPlace(path, kInvalid[(round / 4) % 3]);
    } else {
      const bool b = good % 2 == 0;
      if (round % 2 == 0) {
        Replace(path, b ? kMatrixB : kMatrixA);
      } else {
        WriteInPlace(path, b ? kMatrixB : kMatrixA);
      }
      last_good_version = b ? "11" : "10";
    }
    server.Signal(SIGHUP);
    (invalid ? bad : good)++;
    // One signal at a time: wait for this reload's outcome before the next write.
    ASSERT_TRUE(WaitForLog(server, "reloaded matrix", good)) << server.log();
    ASSERT_TRUE(WaitForLog(server, "matrix reload failed", bad)) << server.log();
    if (!invalid) {
      // The probe sees the matrix just loaded.
      v1::EvaluateResponse response;
      ASSERT_TRUE(Call(*probe, Probe(absl::StrCat("probe-", round)), &response).ok());
      EXPECT_EQ(response.matrix_version(), last_good_version) << "round " << round;
      EXPECT_EQ(response.verdict(),
                last_good_version == "11" ? v1::VERDICT_BLOCK : v1::VERDICT_ALLOW);
    }
  }
  // Let the load run a little on the last matrix, then look at every answer.
  const int calls_before = hammer.calls();
  while (hammer.calls() < calls_before + 50) absl::SleepFor(absl::Milliseconds(5));
  hammer.Stop();
  EXPECT_THAT(hammer.errors(), ::testing::IsEmpty());
  EXPECT_THAT(hammer.versions(), IsSubsetOf({"10", "11"}));
  EXPECT_GT(hammer.calls(), kRounds);

  ASSERT_EQ(last_good_version, "11");
  v1::EvaluateResponse response;
  ASSERT_TRUE(Call(*probe, Probe("probe-final"), &response).ok());
  EXPECT_EQ(response.verdict(), v1::VERDICT_BLOCK);
  EXPECT_EQ(response.matrix_version(), "11");
  EXPECT_EQ(response.owner(), "carol");
  grpc::ClientContext stats_context;
  v1::GetStatsResponse stats;
  ASSERT_TRUE(probe->GetStats(&stats_context, v1::GetStatsRequest(), &stats).ok());
  EXPECT_EQ(stats.matrix_version(), "11");

  // Every failed reload named its errors with their positions and kept the old matrix.
  const std::string log = server.log();
  EXPECT_THAT(log, HasSubstr(path + ":3:30: error: invalid duration '30x'"));
  EXPECT_THAT(log, HasSubstr(path + ":3:44: error: unknown verdict 'BLOCKK'"));
  EXPECT_THAT(log, HasSubstr(path + ":4:11: error: triggers must list at least one trigger"));
  EXPECT_THAT(log, HasSubstr("has 3 errors; still serving version"));
  EXPECT_THAT(log, HasSubstr(path + ":1:1: error: the matrix is empty"));
  EXPECT_THAT(log, HasSubstr("still serving version 10"));
  EXPECT_THAT(log, HasSubstr("still serving version 11"));
  EXPECT_THAT(log, HasSubstr(absl::StrCat("reloaded matrix ", path,
                                          ": version 10 -> 11 (1 lanes, 1 triggers)")));
}

TEST(ReloadE2eTest, WatchReloadsChangesKeepsServingThroughBadAndMissingFiles) {
  const testing::TempDir dir;
  const std::string path = dir.path() + "/matrix.yaml";
  WriteInPlace(path, kMatrixA);
  ServerProcess server;
  ASSERT_TRUE(server.Start(AGATE_SERVER_BIN, {"--matrix", path, "--listen", "127.0.0.1:0",
                                              "--watch", "--watch-interval", "20ms"}))
      << server.log();
  EXPECT_TRUE(WaitForLog(server, "watching " + path + " for changes every 20ms", 1));
  std::unique_ptr<v1::Agate::Stub> stub = NewStub(server.address());
  int n = 0;
  auto version = [&] {
    v1::EvaluateResponse response;
    const grpc::Status status = Call(*stub, Probe(absl::StrCat("p", ++n)), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.matrix_version();
  };
  auto wait_for_version = [&](const std::string& want) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (version() != want && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
    return version() == want;
  };
  EXPECT_EQ(version(), "10");

  Replace(path, kMatrixB);  // as an editor saves: a new file renamed over the old one
  ASSERT_TRUE(wait_for_version("11")) << server.log();

  WriteInPlace(path, kInvalid[0]);
  ASSERT_TRUE(WaitForLog(server, "matrix reload failed", 1)) << server.log();
  EXPECT_EQ(version(), "11");

  ASSERT_EQ(unlink(path.c_str()), 0);
  ASSERT_TRUE(WaitForLog(server, "matrix reload failed", 2)) << server.log();
  EXPECT_THAT(server.log(), HasSubstr(path + ": error: cannot read: No such file or directory"));
  EXPECT_EQ(version(), "11");

  WriteInPlace(path, kMatrixA);  // the file comes back
  ASSERT_TRUE(wait_for_version("10")) << server.log();
  EXPECT_EQ(Occurrences(server.log(), "matrix reload failed"), 2) << "each bad state once";
  EXPECT_EQ(Occurrences(server.log(), "reloaded matrix"), 2);
}

constexpr int kConnections = 16;
constexpr int kBurst = 8;

TEST(OverloadE2eTest, PastTheBoundCallsGetResourceExhaustedAndTheServerKeepsServing) {
  const testing::TempDir dir;
  const std::string path = dir.path() + "/matrix.yaml";
  WriteInPlace(path, kMatrixA);
  ServerProcess server;
  ASSERT_TRUE(server.Start(AGATE_SERVER_BIN,
                           {"--matrix", path, "--listen", "127.0.0.1:0", "--max-in-flight", "2"}))
      << server.log();
  // Many callers on connections of their own, each with a burst of calls in flight; requests
  // with some evidence take a while to read and decode.
  std::vector<std::unique_ptr<v1::Agate::Stub>> stubs;
  for (int c = 0; c < kConnections; ++c) stubs.push_back(NewStub(server.address(), c));
  struct Pending {
    grpc::ClientContext context;
    v1::EvaluateRequest request;
    v1::EvaluateResponse response;
    grpc::Status status;
  };
  struct Caller {
    std::vector<std::unique_ptr<Pending>> pending;
    absl::Mutex mu;
    int done ABSL_GUARDED_BY(mu) = 0;
  };
  int ok = 0, shed = 0;
  std::vector<std::string> unexpected, shed_messages;
  for (int round = 0; round < 20 && shed == 0; ++round) {
    std::vector<std::unique_ptr<Caller>> callers;
    std::vector<std::thread> threads;
    for (int c = 0; c < kConnections; ++c) {
      callers.push_back(std::make_unique<Caller>());
      threads.emplace_back([&, c, caller = callers.back().get()] {
        for (int i = 0; i < kBurst; ++i) {
          auto p = std::make_unique<Pending>();
          p->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
          p->request = Probe(absl::StrCat("o-", round, "-", c, "-", i));
          (*p->request.mutable_evidence())["transcript"] = std::string(32 << 10, 'x');
          Pending* raw = p.get();
          {
            // Under mu, which the callback takes too: that orders *raw's construction before
            // the callback's write for ThreadSanitizer (gRPC's own hand-off is invisible to it).
            absl::MutexLock lock(&caller->mu);
            caller->pending.push_back(std::move(p));
          }
          stubs[c]->async()->Evaluate(&raw->context, &raw->request, &raw->response,
                                      [raw, caller](grpc::Status s) {
                                        absl::MutexLock lock(&caller->mu);
                                        raw->status = std::move(s);
                                        ++caller->done;
                                      });
        }
        absl::MutexLock lock(&caller->mu);
        caller->mu.Await(absl::Condition(
            +[](int* done) { return *done == kBurst; }, &caller->done));
      });
    }
    for (std::thread& t : threads) t.join();
    for (const std::unique_ptr<Caller>& caller : callers) {
      for (const std::unique_ptr<Pending>& p : caller->pending) {
        if (p->status.ok()) {
          ++ok;
        } else if (p->status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
          ++shed;
          shed_messages.push_back(p->status.error_message());
        } else {
          unexpected.push_back(
              absl::StrCat(p->status.error_code(), ": ", p->status.error_message()));
        }
      }
    }
  }
  EXPECT_THAT(unexpected, ::testing::IsEmpty());
  EXPECT_GT(shed, 0) << "no call was shed (" << ok << " OK)";
  EXPECT_GT(ok, 0);
  for (const std::string& m : shed_messages) {
    EXPECT_THAT(m,
                MatchesRegex("server overloaded: [0-9]+ calls in flight \\(--max-in-flight 2\\)"));
  }
  // The server counted exactly the calls it shed, said so in its log, and serves on.
  grpc::ClientContext stats_context;
  v1::GetStatsResponse stats;
  ASSERT_TRUE(stubs[0]->GetStats(&stats_context, v1::GetStatsRequest(), &stats).ok());
  EXPECT_EQ(stats.shed_calls(), static_cast<uint64_t>(shed));
  EXPECT_THAT(server.log(), HasSubstr("Evaluate calls shed since the start (--max-in-flight 2)"));
  // Calls already answered may still be finishing inside gRPC for a moment: wait for the first
  // admitted call, then every sequential call is admitted.
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  v1::EvaluateResponse first;
  while (!Call(*stubs[0], Probe("after"), &first).ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  // A sequential call can still meet the previous one inside gRPC (on a slow, loaded machine or
  // under a sanitizer); it may then be shed, never anything else, and a retry gets through.
  for (int i = 0; i < 20; ++i) {
    v1::EvaluateResponse response;
    grpc::Status status;
    for (int attempt = 0; attempt < 50; ++attempt) {
      status = Call(*stubs[i % kConnections], Probe(absl::StrCat("after-", i)), &response);
      if (status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) break;
      absl::SleepFor(absl::Milliseconds(20));
    }
    ASSERT_TRUE(status.ok()) << i << ": " << status.error_message();
    EXPECT_EQ(response.verdict(), v1::VERDICT_ALLOW);
  }
}

}  // namespace
}  // namespace agate
