// End to end: the real agate-server with its data dir. Cases and decisions survive a graceful
// restart and kill -9; a data dir in use, corrupt or unusable is a clear start-up error; a full
// store makes escalations fail closed while ALLOW keeps serving.
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"

namespace agate {
namespace {

namespace fs = std::filesystem;
using ::agate::testing::RunResult;
using ::agate::testing::ServerProcess;
using ::testing::HasSubstr;

constexpr char kMatrix[] = AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml";

v1::EvaluateRequest Make(absl::string_view id, absl::string_view fields) {
  v1::EvaluateRequest r;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(
      absl::StrCat("request_id: '", id, "' tenant_id: 't1' workflow_id: 'refunds' item_id: '", id,
                   "' ", fields),
      &r));
  return r;
}

constexpr char kBlock[] = "action { type: 'refund' amount: 400 }";
constexpr char kAllow[] = "action { type: 'send_reply' } model { confidence: 0.9 }";

class DurabilityE2eTest : public ::testing::Test {
 protected:
  DurabilityE2eTest() {
    char dir[] = "/tmp/agate-durability-XXXXXX";
    dir_ = mkdtemp(dir);
    data_ = dir_ + "/data";
  }
  ~DurabilityE2eTest() override {
    server_.reset();
    fs::remove_all(dir_);
  }

  void Start(std::vector<std::string> extra = {}) {
    server_ = std::make_unique<ServerProcess>();
    std::vector<std::string> args = {"--matrix",    matrix_,      "--listen",
                                     "127.0.0.1:0", "--data-dir", data_};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_TRUE(server_->Start(AGATE_SERVER_BIN, args)) << server_->log();
    auto c = client::Client::Create({.target = server_->address(), .timeout = absl::Seconds(5)});
    ASSERT_TRUE(c.ok());
    client_ = *std::move(c);
  }
  void Kill() {
    server_->Signal(SIGKILL);
    server_->Wait();
  }

  absl::StatusOr<v1::Case> GetCase(const std::string& id) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::GetCaseRequest request;
    request.set_case_id(id);
    v1::GetCaseResponse response;
    grpc::Status s = client_->stub().GetCase(&context, request, &response);
    if (!s.ok())
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    return response.case_();
  }
  grpc::Status Ack(const std::string& id, const std::string& approver) {
    grpc::ClientContext context;
    context.AddMetadata("x-agate-approver", approver);
    v1::AcknowledgeRequest request;
    request.set_case_id(id);
    request.set_decision(v1::DECISION_APPROVE);
    v1::AcknowledgeResponse response;
    return client_->stub().Acknowledge(&context, request, &response);
  }

  std::string dir_, data_;
  std::string matrix_ = kMatrix;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(DurabilityE2eTest, ACaseAndItsDecisionSurviveKill9) {
  Start();
  absl::StatusOr<v1::EvaluateResponse> blocked = client_->Evaluate(Make("r1", kBlock));
  ASSERT_TRUE(blocked.ok());
  ASSERT_EQ(blocked->verdict(), v1::VERDICT_BLOCK);
  Kill();  // right after the answer: the case was committed before it

  Start();
  EXPECT_THAT(server_->log(), HasSubstr("recovered 1 cases (1 open)"));
  absl::StatusOr<v1::Case> c = GetCase(blocked->case_id());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->state(), v1::CASE_STATE_OPEN);
  EXPECT_EQ(c->owner(), "finance-approver");
  absl::StatusOr<v1::EvaluateResponse> again = client_->Evaluate(Make("r1", kBlock));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->replayed());
  EXPECT_EQ(again->decision_id(), blocked->decision_id());
}

TEST_F(DurabilityE2eTest, AnApprovalGivenBeforeARestartIsRedeemedOnceAfterIt) {
  Start();
  const std::string id = client_->Evaluate(Make("r1", kBlock))->case_id();
  ASSERT_TRUE(Ack(id, "finance-approver").ok());
  server_->Signal(SIGTERM);
  ASSERT_EQ(server_->Wait(), 0);

  Start();
  v1::EvaluateRequest redeem = Make("r1", kBlock);
  redeem.set_request_id("r2");
  redeem.mutable_approval()->set_case_id(id);
  EXPECT_EQ(client_->Evaluate(redeem)->verdict(), v1::VERDICT_ALLOW);
  Kill();

  Start();
  redeem.set_request_id("r3");
  absl::StatusOr<v1::EvaluateResponse> second = client_->Evaluate(redeem);
  EXPECT_EQ(second->verdict(), v1::VERDICT_BLOCK);
  EXPECT_THAT(second->reason(), HasSubstr("already redeemed"));
  // The retry of the redeeming request itself gets its (ALLOW) answer again.
  redeem.set_request_id("r2");
  absl::StatusOr<v1::EvaluateResponse> retry = client_->Evaluate(redeem);
  EXPECT_EQ(retry->verdict(), v1::VERDICT_ALLOW);
  EXPECT_TRUE(retry->replayed());
}

TEST_F(DurabilityE2eTest, ACaseKeepsItsLanesFingerprintAcrossARestartOnAnotherMatrix) {
  // The lane binds approvals to the type, the amount and the invoice, not the target.
  matrix_ = AGATE_SOURCE_DIR "/tests/testdata/matrices/fingerprint.yaml";
  auto refund = [](const std::string& id, const std::string& target, const std::string& invoice) {
    v1::EvaluateRequest r =
        Make(id, absl::StrCat("action { type: 'refund' amount: 300 target: '", target,
                              "' } attributes { fields { key: "
                              "'invoice_id' value { string_value: '",
                              invoice, "' } } }"));
    r.set_item_id("order-1");
    return r;
  };
  Start();
  const std::string id = client_->Evaluate(refund("r1", "acct-1", "inv-1"))->case_id();
  ASSERT_TRUE(Ack(id, "finance-approver").ok());
  server_->Signal(SIGTERM);
  ASSERT_EQ(server_->Wait(), 0);

  // Restarted on the bundled matrix, whose financial lane keeps the default fingerprint: the
  // case still binds what its lane bound when it opened.
  matrix_ = kMatrix;
  Start();
  v1::EvaluateRequest other = refund("r2", "acct-1", "inv-2");
  other.mutable_approval()->set_case_id(id);
  absl::StatusOr<v1::EvaluateResponse> refused = client_->Evaluate(other);
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(refused->verdict(), v1::VERDICT_BLOCK);
  EXPECT_THAT(refused->reason(), HasSubstr("the action differs from the approved one"));
  v1::EvaluateRequest retry = refund("r3", "acct-2", "inv-1");
  retry.mutable_approval()->set_case_id(id);
  absl::StatusOr<v1::EvaluateResponse> redeemed = client_->Evaluate(retry);
  ASSERT_TRUE(redeemed.ok()) << redeemed.status();
  EXPECT_EQ(redeemed->verdict(), v1::VERDICT_ALLOW) << redeemed->reason();
  EXPECT_EQ(redeemed->case_id(), id);
}

TEST_F(DurabilityE2eTest, AllowDecisionsAreKeptWithinTheFlushInterval) {
  Start();
  absl::StatusOr<v1::EvaluateResponse> allowed = client_->Evaluate(Make("a1", kAllow));
  ASSERT_EQ(allowed->verdict(), v1::VERDICT_ALLOW);
  absl::SleepFor(absl::Milliseconds(500));  // the background flush runs every 50 ms
  Kill();
  Start();
  absl::StatusOr<v1::EvaluateResponse> again = client_->Evaluate(Make("a1", kAllow));
  EXPECT_TRUE(again->replayed());
  EXPECT_EQ(again->decision_id(), allowed->decision_id());
}

TEST_F(DurabilityE2eTest, TheDecisionLogVerifiesAfterKill9) {
  Start();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(client_->Evaluate(Make(absl::StrCat("r", i), i % 2 ? kBlock : kAllow)).ok());
  }
  absl::SleepFor(absl::Milliseconds(300));
  Kill();
  Start();
  ASSERT_TRUE(client_->Evaluate(Make("after", kBlock)).ok());
  server_->Signal(SIGTERM);
  ASSERT_EQ(server_->Wait(), 0);
  RunResult verify = testing::Run({AGATE_CLI_BIN, "verify-log", data_ + "/decisions"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  // 21 decisions and the audit records of the 11 cases the BLOCKs opened (one item each).
  EXPECT_THAT(verify.out, HasSubstr("32 records in 1 file, chain intact"));
}

TEST_F(DurabilityE2eTest, ASecondServerOnTheSameDataDirExitsWithAClearError) {
  Start();
  RunResult second = testing::Run(
      {AGATE_SERVER_BIN, "--matrix", kMatrix, "--listen", "127.0.0.1:0", "--data-dir", data_});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_THAT(second.err, HasSubstr(absl::StrCat("data dir ", data_,
                                                 " is in use by another agate-server (pid ")));
  EXPECT_TRUE(client_->Evaluate(Make("r1", kAllow)).ok());
}

TEST_F(DurabilityE2eTest, ACorruptDatabaseStopsTheStartWithAdvice) {
  fs::create_directories(data_);
  std::ofstream(data_ + "/agate.db") << std::string(4096, '#');
  RunResult r = testing::Run(
      {AGATE_SERVER_BIN, "--matrix", kMatrix, "--listen", "127.0.0.1:0", "--data-dir", data_});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(data_ + "/agate.db"));
  EXPECT_THAT(r.err, HasSubstr("restore it from a backup, or move the data dir away"));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("listening on")));
}

TEST_F(DurabilityE2eTest, AnUnusableDataDirIsAClearError) {
  std::ofstream(dir_ + "/file") << "x";
  RunResult r = testing::Run({AGATE_SERVER_BIN, "--matrix", kMatrix, "--listen", "127.0.0.1:0",
                              "--data-dir", dir_ + "/file/data"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(dir_ + "/file/data"));
  RunResult bad = testing::Run({AGATE_SERVER_BIN, "--matrix", kMatrix, "--store", "disk"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--store: must be sqlite, memory or postgres"));
}

TEST_F(DurabilityE2eTest, AnUnreachableDatabaseIsAClearErrorWithoutItsPassword) {
  // Port 1 on loopback: nothing listens there.
  RunResult r = testing::Run({AGATE_SERVER_BIN, "--matrix", kMatrix, "--listen", "127.0.0.1:0",
                              "--data-dir", data_, "--store", "postgres", "--postgres-url",
                              "postgresql://agate:s3cret@127.0.0.1:1/agate?connect_timeout=5"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("127.0.0.1:1/agate"));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("s3cret")));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("listening on")));
}

TEST_F(DurabilityE2eTest, AFullStoreFailsEscalationsClosedAndKeepsAllowing) {
  Start({"--max-store-bytes", "131072"});
  bool failed_closed = false;
  for (int i = 0; i < 400 && !failed_closed; ++i) {
    v1::EvaluateRequest r = Make(absl::StrCat("r", i), kBlock);
    (*r.mutable_evidence())["justification"] = std::string(8000, 'j');
    absl::StatusOr<v1::EvaluateResponse> answer = client_->Evaluate(r);
    ASSERT_TRUE(answer.ok()) << answer.status();
    failed_closed = answer->failed_closed();
    if (failed_closed) {
      EXPECT_EQ(answer->verdict(), v1::VERDICT_HOLD);
      EXPECT_THAT(answer->reason(), HasSubstr("full"));
    }
  }
  ASSERT_TRUE(failed_closed) << "the store never filled";
  absl::StatusOr<v1::EvaluateResponse> allowed = client_->Evaluate(Make("ok", kAllow));
  ASSERT_TRUE(allowed.ok());
  EXPECT_EQ(allowed->verdict(), v1::VERDICT_ALLOW);
  EXPECT_FALSE(allowed->failed_closed());
}

// A really full disk: the data dir on a 512 KiB tmpfs (the test mounts one; skipped where it may
// not). Escalations fail closed once nothing more fits, ALLOW keeps being answered, and after a
// restart on the same (still full) disk every case a client was told of is there.
TEST_F(DurabilityE2eTest, AFullDiskFailsEscalationsClosedAndLosesNothingAcknowledged) {
  fs::create_directories(data_);
  if (mount("tmpfs", data_.c_str(), "tmpfs", 0, "size=512k") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  }
  struct Unmount {
    std::string dir;
    ~Unmount() { umount2(dir.c_str(), MNT_DETACH); }
  } unmount{data_};
  Start();
  std::vector<std::string> told;
  bool failed_closed = false;
  for (int i = 0; i < 2000 && !failed_closed; ++i) {
    v1::EvaluateRequest r = Make(absl::StrCat("r", i), kBlock);
    (*r.mutable_evidence())["justification"] = std::string(4000, 'j');
    absl::StatusOr<v1::EvaluateResponse> answer = client_->Evaluate(r);
    ASSERT_TRUE(answer.ok()) << answer.status();
    failed_closed = answer->failed_closed();
    if (!failed_closed) told.push_back(answer->case_id());
  }
  ASSERT_TRUE(failed_closed) << "the disk never filled";
  ASSERT_FALSE(told.empty());
  absl::StatusOr<v1::EvaluateResponse> allowed = client_->Evaluate(Make("ok", kAllow));
  ASSERT_TRUE(allowed.ok());
  EXPECT_EQ(allowed->verdict(), v1::VERDICT_ALLOW);
  Kill();
  Start();
  for (const std::string& id : told) {
    absl::StatusOr<v1::Case> c = GetCase(id);
    ASSERT_TRUE(c.ok()) << id << ": " << c.status();
  }
  server_.reset();
}

TEST_F(DurabilityE2eTest, MemoryStoreSaysItKeepsNothing) {
  server_ = std::make_unique<ServerProcess>();
  ASSERT_TRUE(server_->Start(AGATE_SERVER_BIN,
                             {"--matrix", kMatrix, "--listen", "127.0.0.1:0", "--store", "memory"}))
      << server_->log();
  EXPECT_THAT(server_->log(), HasSubstr("--store memory: cases and decisions are not persisted"));
}

}  // namespace
}  // namespace agate
