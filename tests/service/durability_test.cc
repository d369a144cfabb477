// The Service with its durable store and decision log: idempotency (also across a restart),
// recovery of cases and count() windows, the decision log of every decision, and a full store
// that fails escalations (the client fails closed) while ALLOW keeps serving.
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/matrix.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "service/service.h"
#include "store/decision_log.h"
#include "store/sqlite_store.h"

namespace agate::service {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr char kMatrix[] = AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml";

v1::EvaluateRequest Make(absl::string_view id, absl::string_view fields) {
  v1::EvaluateRequest r;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(
      absl::StrCat("request_id: '", id, "' tenant_id: 't1' workflow_id: 'w' item_id: 'i1' ",
                   fields),
      &r));
  return r;
}

constexpr char kAllow[] =
    "action { type: 'send_reply' customer_facing: true } model { confidence: 0.95 }";
constexpr char kBlock[] = "action { type: 'refund' amount: 300 } model { confidence: 0.95 }";
constexpr char kRetry[] =
    "action { type: 'sync' critical: true } signals { key: 'retry' value: 2 }";

// A server's worth of durable state in a temp dir, that a test can "restart".
class DurabilityTest : public ::testing::Test {
 protected:
  DurabilityTest() {
    dir_ = (fs::temp_directory_path() /
            absl::StrCat("agate_durability_",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name(), "_",
                         getpid()))
               .string();
    fs::remove_all(dir_);
    Start();
  }
  ~DurabilityTest() override {
    Stop();
    fs::remove_all(dir_);
  }

  void Start(store::SqliteStoreOptions options = {}) {
    options.dir = dir_;
    absl::StatusOr<std::unique_ptr<store::SqliteStore>> s =
        store::SqliteStore::Open(options, clock_);
    ASSERT_TRUE(s.ok()) << s.status();
    sqlite_ = *std::move(s);
    absl::StatusOr<std::unique_ptr<store::DecisionLog>> log =
        store::DecisionLog::Open({.dir = dir_ + "/decisions"});
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
    ServiceOptions service_options;
    service_options.store = sqlite_.get();
    service_options.decision_log = log_.get();
    absl::StatusOr<std::unique_ptr<Service>> service =
        Service::Create(*engine::LoadMatrixFile(kMatrix, nullptr), clock_, service_options);
    ASSERT_TRUE(service.ok()) << service.status();
    service_ = *std::move(service);
    recovery_ = service_->recovery();
  }
  // Stop shuts down as the server does on SIGTERM: snapshot count() windows, then close.
  void Stop() {
    if (service_ != nullptr) {
      EXPECT_TRUE(service_->SaveSignals().ok());
    }
    service_.reset();
    log_.reset();
    sqlite_.reset();
  }
  void Restart(store::SqliteStoreOptions options = {}) {
    Stop();
    Start(options);
  }

  absl::StatusOr<v1::EvaluateResponse> Evaluate(const v1::EvaluateRequest& request) {
    v1::EvaluateResponse response;
    absl::Status status = service_->Evaluate(request, &response);
    if (!status.ok()) return status;
    return response;
  }

  FakeClock clock_;
  std::string dir_;
  std::unique_ptr<store::SqliteStore> sqlite_;
  std::unique_ptr<store::DecisionLog> log_;
  std::unique_ptr<Service> service_;
  Recovery recovery_;
};

TEST_F(DurabilityTest, TheSameRequestGetsTheSameDecisionAndNoSecondCase) {
  absl::StatusOr<v1::EvaluateResponse> first = Evaluate(Make("r1", kBlock));
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->replayed());
  absl::StatusOr<v1::EvaluateResponse> again = Evaluate(Make("r1", kBlock));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->replayed());
  EXPECT_EQ(again->decision_id(), first->decision_id());
  EXPECT_EQ(again->case_id(), first->case_id());
  absl::StatusOr<v1::Case> c = service_->GetCase([&] {
    v1::GetCaseRequest r;
    r.set_case_id(first->case_id());
    return r;
  }());
  EXPECT_THAT(c->request_ids(), SizeIs(1));  // not joined twice
  EXPECT_THAT(c->history(), SizeIs(1));
}

// The bytes Evaluate hands out (the gRPC layer sends them instead of serializing again) are the
// response's own; a replay, whose response Evaluate does not serialize, leaves them empty.
TEST_F(DurabilityTest, ResponseBytesAreTheFirstAnswersSerialization) {
  int n = 0;
  for (const char* fields : {kAllow, kBlock}) {
    SCOPED_TRACE(fields);
    const v1::EvaluateRequest request = Make(absl::StrCat("bytes-", ++n), fields);
    v1::EvaluateResponse response;
    std::string bytes = "stale";
    ASSERT_TRUE(service_->Evaluate(request, &response, &bytes).ok());
    if (!bytes.empty()) {
      v1::EvaluateResponse parsed;
      ASSERT_TRUE(parsed.ParseFromString(bytes));
      EXPECT_EQ(parsed.SerializeAsString(), response.SerializeAsString());
    }
    if (response.verdict() == v1::VERDICT_ALLOW) {
      EXPECT_FALSE(bytes.empty());
    }

    // A replay comes as the stored bytes, marked replayed, without a parse.
    v1::EvaluateResponse unused;
    std::string replay_bytes;
    ASSERT_TRUE(service_->Evaluate(request, &unused, &replay_bytes).ok());
    ASSERT_FALSE(replay_bytes.empty());
    v1::EvaluateResponse replay;
    ASSERT_TRUE(replay.ParseFromString(replay_bytes));
    EXPECT_TRUE(replay.replayed());
    EXPECT_EQ(replay.decision_id(), response.decision_id());
    replay.clear_replayed();
    EXPECT_EQ(replay.SerializeAsString(), response.SerializeAsString());
  }
}

TEST_F(DurabilityTest, AReusedRequestIdWithOtherContentsIsRefused) {
  ASSERT_TRUE(Evaluate(Make("r1", kAllow)).ok());
  absl::StatusOr<v1::EvaluateResponse> other = Evaluate(Make("r1", kBlock));
  EXPECT_EQ(other.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(other.status().message()),
              HasSubstr("request_id: r1 of tenant t1 was already decided"));
  // Another tenant may use the same request_id.
  v1::EvaluateRequest elsewhere = Make("r1", kBlock);
  elsewhere.set_tenant_id("t2");
  EXPECT_TRUE(Evaluate(elsewhere).ok());
}

TEST_F(DurabilityTest, AReplayCountsNoSignals) {
  // retry-storm fires when count("retry", "10m") > 3: two requests of 2 retries each reach 4
  // only if both are counted; the replays of the first must not count.
  ASSERT_EQ(Evaluate(Make("r1", kRetry))->verdict(), v1::VERDICT_ALLOW);
  ASSERT_EQ(Evaluate(Make("r1", kRetry))->verdict(), v1::VERDICT_ALLOW);
  ASSERT_EQ(Evaluate(Make("r1", kRetry))->verdict(), v1::VERDICT_ALLOW);
  EXPECT_EQ(Evaluate(Make("r2", kRetry))->verdict(), v1::VERDICT_SAFE_MODE);
}

TEST_F(DurabilityTest, IdempotencyCasesAndCountWindowsSurviveARestart) {
  absl::StatusOr<v1::EvaluateResponse> allow = Evaluate(Make("r1", kAllow));
  absl::StatusOr<v1::EvaluateResponse> block = Evaluate(Make("r2", kBlock));
  ASSERT_TRUE(Evaluate(Make("r3", kRetry)).ok());
  ASSERT_TRUE(allow.ok() && block.ok());

  Restart();
  EXPECT_EQ(recovery_.cases, 1u);
  EXPECT_EQ(recovery_.open_cases, 1u);
  EXPECT_EQ(recovery_.decisions, 3u);
  EXPECT_EQ(recovery_.signal_keys, 1u);
  absl::StatusOr<v1::EvaluateResponse> allow_again = Evaluate(Make("r1", kAllow));
  absl::StatusOr<v1::EvaluateResponse> block_again = Evaluate(Make("r2", kBlock));
  ASSERT_TRUE(allow_again.ok() && block_again.ok());
  EXPECT_TRUE(allow_again->replayed());
  EXPECT_EQ(allow_again->decision_id(), allow->decision_id());
  // The ALLOW answer, rebuilt from the decision log, is the answer given.
  v1::EvaluateResponse rebuilt = *allow_again;
  rebuilt.clear_replayed();
  EXPECT_EQ(rebuilt.SerializeAsString(), allow->SerializeAsString());
  EXPECT_TRUE(block_again->replayed());
  EXPECT_EQ(block_again->decision_id(), block->decision_id());
  v1::EvaluateResponse stored = *block_again;
  stored.clear_replayed();
  EXPECT_EQ(stored.SerializeAsString(), block->SerializeAsString());
  EXPECT_EQ(block_again->case_id(), block->case_id());
  EXPECT_EQ(service_->cases().open_cases(), 1u);
  EXPECT_EQ(Evaluate(Make("r1", kBlock)).status().code(), absl::StatusCode::kAlreadyExists);
  // The restored window: 2 retries before the restart + 2 now > 3.
  EXPECT_EQ(Evaluate(Make("r4", kRetry))->verdict(), v1::VERDICT_SAFE_MODE);

  // Past the idempotency window the request_id is free again.
  clock_.Advance(absl::Minutes(11));
  Restart();
  EXPECT_EQ(recovery_.decisions, 0u);
  absl::StatusOr<v1::EvaluateResponse> later = Evaluate(Make("r1", kAllow));
  EXPECT_FALSE(later->replayed());
  EXPECT_NE(later->decision_id(), allow->decision_id());
}

TEST_F(DurabilityTest, TheDecisionLogHoldsEveryDecisionInAnIntactChain) {
  ASSERT_TRUE(Evaluate(Make("r1", kAllow)).ok());
  ASSERT_TRUE(Evaluate(Make("r2", kBlock)).ok());
  ASSERT_TRUE(Evaluate(Make("r2", kBlock)).ok());  // a replay is not a new decision
  Restart();
  ASSERT_TRUE(Evaluate(Make("r3", kAllow)).ok());
  Stop();
  absl::StatusOr<store::VerifyResult> verified = store::VerifyLog(dir_ + "/decisions");
  ASSERT_TRUE(verified.ok()) << verified.status();
  // Three decisions and the audit record of the case r2 opened.
  EXPECT_EQ(verified->records, 4u);
  EXPECT_TRUE(verified->anchor.empty());
}

TEST_F(DurabilityTest, AFullStoreFailsEscalationsButAllowKeepsServing) {
  Restart({.max_bytes = 192 * 1024});
  absl::Status failure;
  int n = 0;
  for (; n < 500 && failure.ok(); ++n) {
    v1::EvaluateRequest r = Make(absl::StrCat("r", n), kBlock);
    r.set_item_id(absl::StrCat("item", n));  // a new case each time
    (*r.mutable_evidence())["justification"] = std::string(8000, 'j');
    failure = Evaluate(r).status();
  }
  ASSERT_FALSE(failure.ok()) << "the store never filled";
  EXPECT_EQ(failure.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(failure.message()), HasSubstr("full"));
  absl::StatusOr<v1::EvaluateResponse> allow = Evaluate(Make("ok", kAllow));
  ASSERT_TRUE(allow.ok()) << allow.status();
  EXPECT_EQ(allow->verdict(), v1::VERDICT_ALLOW);
  EXPECT_EQ(service_->cases().unsynced(), 1u);
}

}  // namespace
}  // namespace agate::service
