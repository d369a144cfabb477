// The WatchCases bounds through the real server: --max-watchers in all, and
// --max-watchers-per-principal for verified principals (bearer tokens over a Unix socket); a
// stream gives its slot back however it ends, so the same number can be opened again.
#include <signal.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agate/v1/agate.grpc.pb.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/pki.h"
#include "tests/testing/process.h"

namespace agate {
namespace {

using ::agate::testing::ServerProcess;
using ::testing::HasSubstr;

constexpr char kMatrix[] = AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml";

std::unique_ptr<client::Client> Connect(const std::string& address, const std::string& token = "") {
  auto c = client::Client::Create({.target = address, .timeout = absl::Seconds(5), .token = token});
  EXPECT_TRUE(c.ok()) << c.status();
  return *std::move(c);
}

// Metric returns a sample of GetStats (-1 if the server does not report it).
double Metric(client::Client& c, const std::string& name) {
  std::unique_ptr<grpc::ClientContext> context = c.NewContext();
  v1::GetStatsResponse stats;
  const grpc::Status status = c.stub().GetStats(context.get(), v1::GetStatsRequest(), &stats);
  if (!status.ok()) {
    ADD_FAILURE() << "GetStats: " << status.error_code() << " " << status.error_message();
    return -1;
  }
  for (const v1::Metric& m : stats.metrics()) {
    if (m.name() == name) return m.value();
  }
  return -1;
}

// WaitForWatchers waits until the server counts n subscribed watchers.
bool WaitForWatchers(client::Client& c, double n) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    if (Metric(c, "agate_watchers") == n) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

// An open WatchCases stream.
struct Stream {
  std::unique_ptr<grpc::ClientContext> context;
  std::unique_ptr<grpc::ClientReader<v1::CaseEvent>> reader;
};

Stream Watch(client::Client& c, absl::Duration deadline = absl::Seconds(30),
             const v1::WatchCasesRequest& request = {}) {
  Stream s;
  s.context = c.NewContext();
  s.context->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  s.reader = c.stub().WatchCases(s.context.get(), request);
  return s;
}

// Refusal returns how the server ended a stream it refused at once.
grpc::Status Refusal(Stream s) {
  v1::CaseEvent event;
  EXPECT_FALSE(s.reader->Read(&event)) << "the stream was not refused";
  return s.reader->Finish();
}

// Close ends a stream from the client (cancel), and waits for its end.
void Close(Stream& s) {
  s.context->TryCancel();
  v1::CaseEvent event;
  while (s.reader->Read(&event)) {
  }
  s.reader->Finish();
}

Stream WatchBatched(client::Client& c, absl::Duration window) {
  v1::WatchCasesRequest request;
  request.mutable_batch_window()->set_seconds(absl::ToInt64Seconds(window));
  return Watch(c, absl::Seconds(30), request);
}

// Escalate asks for a refund of 400 for a new item: a BLOCK that opens a case (one event).
void Escalate(client::Client& c, int i) {
  v1::EvaluateRequest r;
  r.set_request_id(absl::StrCat("block", i));
  r.set_tenant_id("t1");
  r.set_workflow_id("refunds");
  r.set_item_id(absl::StrCat("order", i));
  r.mutable_action()->set_type("refund");
  r.mutable_action()->set_amount(400);
  absl::StatusOr<v1::EvaluateResponse> response = c.Evaluate(r);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->verdict(), v1::VERDICT_BLOCK);
}

// ReadEvents reads n events from s (a batch's `more` as events of their own); *messages counts
// the messages they came in.
std::vector<v1::CaseEvent> ReadEvents(Stream& s, size_t n, int* messages) {
  std::vector<v1::CaseEvent> events;
  v1::CaseEvent message;
  while (events.size() < n && s.reader->Read(&message)) {
    ++*messages;
    for (const v1::CaseEvent& more : message.more()) EXPECT_EQ(more.more_size(), 0);
    google::protobuf::RepeatedPtrField<v1::CaseEvent> more = std::move(*message.mutable_more());
    message.clear_more();
    events.push_back(message);
    for (v1::CaseEvent& e : more) events.push_back(std::move(e));
  }
  return events;
}

// Read is what one stream read of n escalations: the events and the messages they came in.
struct Read {
  std::vector<v1::CaseEvent> events;
  int messages = 0;
};

// EscalateAndRead waits until both streams are subscribed, makes n escalations and reads them
// from a, then from b.
std::pair<Read, Read> EscalateAndRead(client::Client& c, Stream& a, Stream& b, int n) {
  std::pair<Read, Read> read;
  EXPECT_TRUE(WaitForWatchers(c, 2));
  for (int i = 0; i < n; ++i) Escalate(c, i);
  read.first.events = ReadEvents(a, n, &read.first.messages);
  read.second.events = ReadEvents(b, n, &read.second.messages);
  EXPECT_EQ(read.first.events.size(), static_cast<size_t>(n));
  EXPECT_EQ(read.second.events.size(), static_cast<size_t>(n));
  return read;
}

TEST(WatchersE2eTest, ABatchedWatcherGetsEveryEventInOrderInFewerMessages) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(AGATE_SERVER_BIN,
                           {"--matrix", kMatrix, "--listen", "127.0.0.1:0", "--store", "memory"}))
      << server.log();
  std::unique_ptr<client::Client> c = Connect(server.address());
  Stream one = Watch(*c), batched = WatchBatched(*c, absl::Seconds(1));
  constexpr int kEvents = 12;
  const auto [one_read, batched_read] = EscalateAndRead(*c, one, batched, kEvents);
  const std::vector<v1::CaseEvent>& each = one_read.events;
  const std::vector<v1::CaseEvent>& in_batches = batched_read.events;
  ASSERT_EQ(each.size(), static_cast<size_t>(kEvents));
  ASSERT_EQ(in_batches.size(), static_cast<size_t>(kEvents));
  EXPECT_EQ(one_read.messages, kEvents);
  // The first event went at once, the others waited for the window: fewer messages.
  EXPECT_LT(batched_read.messages, kEvents);
  for (int i = 0; i < kEvents; ++i) {
    EXPECT_EQ(in_batches[i].sequence(), each[i].sequence());
    EXPECT_EQ(in_batches[i].case_().id(), each[i].case_().id());
    EXPECT_EQ(in_batches[i].dropped(), 0u);
    if (i > 0) {
      EXPECT_EQ(in_batches[i].sequence(), in_batches[i - 1].sequence() + 1);
    }
  }
  Close(one);
  Close(batched);
  EXPECT_TRUE(WaitForWatchers(*c, 0));
}

TEST(WatchersE2eTest, ASummaryWatcherGetsTheSameEventsWithoutEvidenceHistoryAndRequestIds) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(AGATE_SERVER_BIN,
                           {"--matrix", kMatrix, "--listen", "127.0.0.1:0", "--store", "memory"}))
      << server.log();
  std::unique_ptr<client::Client> c = Connect(server.address());
  v1::WatchCasesRequest summary_request;
  summary_request.set_view(v1::CASE_VIEW_SUMMARY);
  summary_request.mutable_batch_window()->set_seconds(1);
  Stream full = Watch(*c), summary = Watch(*c, absl::Seconds(30), summary_request);
  constexpr int kEvents = 4;
  const auto [full_read, summary_read] = EscalateAndRead(*c, full, summary, kEvents);
  const std::vector<v1::CaseEvent>& whole = full_read.events;
  const std::vector<v1::CaseEvent>& slim = summary_read.events;
  ASSERT_EQ(whole.size(), static_cast<size_t>(kEvents));
  ASSERT_EQ(slim.size(), static_cast<size_t>(kEvents));
  for (int i = 0; i < kEvents; ++i) {
    SCOPED_TRACE(absl::StrCat("event ", i));
    // The full event has what the summary leaves out.
    ASSERT_TRUE(whole[i].case_().has_evidence());
    ASSERT_GT(whole[i].case_().history_size(), 0);
    ASSERT_GT(whole[i].case_().request_ids_size(), 0);
    v1::CaseEvent expected = whole[i];
    expected.mutable_case_()->clear_evidence();
    expected.mutable_case_()->clear_history();
    expected.mutable_case_()->clear_request_ids();
    EXPECT_EQ(slim[i].SerializeAsString(), expected.SerializeAsString());
    EXPECT_LT(slim[i].ByteSizeLong(), whole[i].ByteSizeLong());
  }
  // The rest is one GetCase away.
  std::unique_ptr<grpc::ClientContext> context = c->NewContext();
  v1::GetCaseRequest get;
  get.set_case_id(slim[0].case_().id());
  v1::GetCaseResponse got;
  ASSERT_TRUE(c->stub().GetCase(context.get(), get, &got).ok());
  EXPECT_EQ(got.case_().evidence().SerializeAsString(),
            whole[0].case_().evidence().SerializeAsString());
  Close(full);
  Close(summary);
}

TEST(WatchersE2eTest, RefusesAViewThatIsNotACaseViewNamingIt) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(AGATE_SERVER_BIN,
                           {"--matrix", kMatrix, "--listen", "127.0.0.1:0", "--store", "memory"}))
      << server.log();
  std::unique_ptr<client::Client> c = Connect(server.address());
  v1::WatchCasesRequest request;
  request.set_view(static_cast<v1::CaseView>(3));
  const grpc::Status status = Refusal(Watch(*c, absl::Seconds(30), request));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("view: 3 is not a CaseView"));
  EXPECT_EQ(Metric(*c, "agate_watchers"), 0);
}

TEST(WatchersE2eTest, AServerWithABatchWaitingForItsWindowShutsDownCleanly) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(AGATE_SERVER_BIN, {"--matrix", kMatrix, "--listen", "127.0.0.1:0",
                                              "--store", "memory", "--drain-timeout", "1s"}))
      << server.log();
  std::unique_ptr<client::Client> c = Connect(server.address());
  Stream batched = WatchBatched(*c, absl::Seconds(10));
  ASSERT_TRUE(WaitForWatchers(*c, 1));
  Escalate(*c, 1);
  int messages = 0;
  ASSERT_EQ(ReadEvents(batched, 1, &messages).size(), 1u);  // the first goes at once
  Escalate(*c, 2);  // held for the window: an alarm is pending
  server.Signal(SIGTERM);
  EXPECT_EQ(server.Wait(), 0) << server.log();
  v1::CaseEvent event;
  while (batched.reader->Read(&event)) {
  }
  EXPECT_FALSE(batched.reader->Finish().ok());
}

TEST(WatchersE2eTest, RefusesABatchWindowOutsideItsRangeNamingIt) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(AGATE_SERVER_BIN,
                           {"--matrix", kMatrix, "--listen", "127.0.0.1:0", "--store", "memory"}))
      << server.log();
  std::unique_ptr<client::Client> c = Connect(server.address());
  const grpc::Status status = Refusal(WatchBatched(*c, absl::Seconds(11)));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("batch_window: must be between 0 and 10s"));
  EXPECT_EQ(Metric(*c, "agate_watchers"), 0);
}

TEST(WatchersE2eTest, PastMaxWatchersAStreamIsRefusedAndEveryEndGivesTheSlotBack) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(AGATE_SERVER_BIN, {"--matrix", kMatrix, "--listen", "127.0.0.1:0",
                                              "--store", "memory", "--max-watchers", "3"}))
      << server.log();
  std::unique_ptr<client::Client> c = Connect(server.address());
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    // Two streams the client cancels, one whose deadline ends it.
    std::vector<Stream> streams;
    streams.push_back(Watch(*c));
    streams.push_back(Watch(*c));
    streams.push_back(Watch(*c, absl::Seconds(2)));
    ASSERT_TRUE(WaitForWatchers(*c, 3));
    const grpc::Status refused = Refusal(Watch(*c));
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_EQ(refused.error_message(),
              "watchers: 3 WatchCases streams are open (--max-watchers 3)");
    // The open streams still get events.
    v1::EvaluateRequest refund;
    refund.set_request_id(absl::StrCat("r", round));
    refund.set_tenant_id("t1");
    refund.set_item_id(absl::StrCat("order-", round));
    refund.mutable_action()->set_type("refund");
    refund.mutable_action()->set_amount(400);
    ASSERT_EQ(c->Evaluate(refund)->verdict(), v1::VERDICT_BLOCK);
    for (Stream& s : streams) {
      v1::CaseEvent event;
      ASSERT_TRUE(s.reader->Read(&event));
      EXPECT_EQ(event.transition().event(), "opened");
    }
    Close(streams[0]);
    Close(streams[1]);
    v1::CaseEvent event;
    EXPECT_FALSE(streams[2].reader->Read(&event));  // its deadline
    EXPECT_EQ(streams[2].reader->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
        << server.log();
    ASSERT_TRUE(WaitForWatchers(*c, 0)) << "a slot leaked";
  }
  EXPECT_EQ(Metric(*c, "agate_watchers_refused_total"), 3);
  EXPECT_THAT(server.log(),
              HasSubstr("watchers: 3 WatchCases streams are open (--max-watchers 3)"));
}

TEST(WatchersE2eTest, AServerWithOpenWatchersShutsDownCleanly) {
  ServerProcess server;
  ASSERT_TRUE(
      server.Start(AGATE_SERVER_BIN, {"--matrix", kMatrix, "--listen", "127.0.0.1:0", "--store",
                                      "memory", "--max-watchers", "2", "--drain-timeout", "1s"}))
      << server.log();
  std::unique_ptr<client::Client> c = Connect(server.address());
  Stream a = Watch(*c), b = Watch(*c);
  ASSERT_TRUE(WaitForWatchers(*c, 2));
  server.Signal(SIGTERM);
  EXPECT_EQ(server.Wait(), 0) << server.log();
  v1::CaseEvent event;
  EXPECT_FALSE(a.reader->Read(&event));
  EXPECT_FALSE(b.reader->Read(&event));
  EXPECT_FALSE(a.reader->Finish().ok());
  EXPECT_FALSE(b.reader->Finish().ok());
}

TEST(WatchersE2eTest, RefusesWatcherBoundsBelowOne) {
  for (const char* flag : {"--max-watchers", "--max-watchers-per-principal"}) {
    for (const char* value : {"0", "-1"}) {
      const testing::RunResult r =
          testing::Run({AGATE_SERVER_BIN, "--matrix", kMatrix, flag, value});
      EXPECT_EQ(r.exit_code, 2) << flag << " " << value;
      EXPECT_THAT(r.err, HasSubstr(flag)) << r.err;
    }
  }
}

// With an access policy, each verified principal has its own bound.
class PrincipalWatchersE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string& dir = dir_.path();
    testing::WriteFileOrDie(dir + "/jwks.json", testing::Jwks({{&key_, "k1"}}));
    testing::WriteFileOrDie(dir + "/access.yaml", R"(version: 1
issuers:
  - issuer: https://idp.test
    audience: agate
    jwks: jwks.json
agents:
  - principal: support-bot
    tenants: [t1]
operators:
  - group: finance-approver
    tenants: [t1]
admins:
  - subject: root@example.com
)");
    // Bearer tokens travel in the clear only on loopback or a Unix socket: the socket.
    ASSERT_TRUE(server_.Start(AGATE_SERVER_BIN,
                              {"--matrix", kMatrix, "--access", dir + "/access.yaml", "--listen",
                               "unix:" + dir + "/agate.sock", "--store", "memory", "--max-watchers",
                               "10", "--max-watchers-per-principal", "2"}))
        << server_.log();
  }

  std::unique_ptr<client::Client> As(const std::string& subject) {
    const int64_t now = absl::ToUnixSeconds(absl::Now());
    return Connect(
        server_.address(),
        testing::SignJwt(key_, R"({"alg":"RS256","kid":"k1","typ":"JWT"})",
                         absl::StrCat(R"({"iss":"https://idp.test","aud":"agate",)", R"("sub":")",
                                      subject, R"(","groups":["finance-approver"],"iat":)", now,
                                      R"(,"exp":)", now + 600, "}")));
  }

  testing::TempDir dir_;
  testing::TestKey key_ = testing::TestKey::Generate(testing::KeyType::kRsa2048);
  ServerProcess server_;
};

TEST_F(PrincipalWatchersE2eTest, EachPrincipalHasItsOwnBoundAndGetsItBackOnClose) {
  std::unique_ptr<client::Client> alice = As("alice@example.com");
  std::unique_ptr<client::Client> bob = As("bob@example.com");
  std::unique_ptr<client::Client> admin = As("root@example.com");  // reads the metrics
  std::vector<Stream> alices;
  alices.push_back(Watch(*alice));
  alices.push_back(Watch(*alice));
  ASSERT_TRUE(WaitForWatchers(*admin, 2));
  const grpc::Status refused = Refusal(Watch(*alice));
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(refused.error_message(),
            "watchers: principal alice@example.com has 2 WatchCases streams open "
            "(--max-watchers-per-principal 2)");
  // Another principal is not affected.
  std::vector<Stream> bobs;
  bobs.push_back(Watch(*bob));
  bobs.push_back(Watch(*bob));
  ASSERT_TRUE(WaitForWatchers(*admin, 4));
  EXPECT_EQ(Refusal(Watch(*bob)).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // alice closes one: she may open one again, and no more.
  Close(alices[0]);
  ASSERT_TRUE(WaitForWatchers(*admin, 3));
  alices[0] = Watch(*alice);
  ASSERT_TRUE(WaitForWatchers(*admin, 4));
  EXPECT_EQ(Refusal(Watch(*alice)).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  for (Stream& s : alices) Close(s);
  for (Stream& s : bobs) Close(s);
  ASSERT_TRUE(WaitForWatchers(*admin, 0));
}

}  // namespace
}  // namespace agate
