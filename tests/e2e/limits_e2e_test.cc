// The case store's bounds through the real agate-server: per-tenant open-case quotas, the
// evidence a case keeps (cut, with size and digest) and ListCases read from the index.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "common/sha256.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"

namespace agate {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr char kMatrix[] = AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml";

// A HOLD (the customer lane) for tenant's item.
v1::EvaluateRequest Hold(const std::string& id, const std::string& tenant,
                         const std::string& item) {
  v1::EvaluateRequest r;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(
      absl::StrCat("request_id: '", id, "' tenant_id: '", tenant, "' workflow_id: 'support' ",
                   "item_id: '", item, "' action { type: 'send_reply' customer_facing: true } ",
                   "model { confidence: 0.5 }"),
      &r));
  return r;
}

class LimitsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start(
        AGATE_SERVER_BIN,
        {"--matrix", kMatrix, "--listen", "unix:" + dir_.path() + "/agate.sock", "--store",
         "memory", "--max-open-cases-per-tenant", "2", "--max-evidence-entry-bytes", "64"},
        1))
        << server_.log();
    auto c = client::Client::Create({.target = server_.address(0)});
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = *std::move(c);
  }

  grpc::Status Evaluate(const v1::EvaluateRequest& request, v1::EvaluateResponse* response) {
    return client_->stub().Evaluate(client_->NewContext().get(), request, response);
  }

  testing::TempDir dir_;
  testing::ServerProcess server_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(LimitsE2eTest, ATenantPastItsQuotaIsRefusedNamingItAndOthersAreServed) {
  v1::EvaluateResponse response;
  ASSERT_TRUE(Evaluate(Hold("a1", "t1", "i1"), &response).ok());
  ASSERT_TRUE(Evaluate(Hold("a2", "t1", "i2"), &response).ok());
  grpc::Status refused = Evaluate(Hold("a3", "t1", "i3"), &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("tenant t1 has 2 open cases, its quota is 2"));
  grpc::Status other = Evaluate(Hold("b1", "t2", "i1"), &response);
  EXPECT_TRUE(other.ok()) << other.error_message();
  EXPECT_EQ(response.verdict(), v1::VERDICT_HOLD);
  // The client library fails closed on it (no answer: HOLD), as on any refusal to decide.
  absl::StatusOr<v1::EvaluateResponse> closed = client_->Evaluate(Hold("a4", "t1", "i4"));
  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_EQ(closed->verdict(), v1::VERDICT_HOLD);
  EXPECT_TRUE(closed->case_id().empty());
}

TEST_F(LimitsE2eTest, ACaseKeepsTheStartOfALongEntryWithItsSizeAndDigest) {
  v1::EvaluateRequest request = Hold("e1", "t1", "i1");
  const std::string context(5000, 'r');
  (*request.mutable_evidence())["retrieved_context"] = context;
  v1::EvaluateResponse response;
  ASSERT_TRUE(Evaluate(request, &response).ok());
  v1::GetCaseRequest get;
  get.set_case_id(response.case_id());
  v1::GetCaseResponse got;
  ASSERT_TRUE(client_->stub().GetCase(client_->NewContext().get(), get, &got).ok());
  const v1::EvidencePacket& evidence = got.case_().evidence();
  EXPECT_EQ(evidence.retrieved_context(), std::string(64, 'r'));
  ASSERT_TRUE(evidence.truncated().contains("retrieved_context"));
  const v1::TruncatedEvidence& cut = evidence.truncated().at("retrieved_context");
  EXPECT_EQ(cut.size(), 5000u);
  EXPECT_EQ(cut.kept_bytes(), 64u);
  std::string digest;
  ThreadSha256().HexAppend(context, &digest);
  EXPECT_EQ(cut.sha256(), digest);
}

TEST_F(LimitsE2eTest, ListCasesFiltersByStateAndTenant) {
  v1::EvaluateResponse response;
  ASSERT_TRUE(Evaluate(Hold("a1", "t1", "i1"), &response).ok());
  const std::string first = response.case_id();
  ASSERT_TRUE(Evaluate(Hold("b1", "t2", "i1"), &response).ok());
  ASSERT_TRUE(Evaluate(Hold("a2", "t1", "i2"), &response).ok());
  const std::string second = response.case_id();
  v1::AcknowledgeRequest ack;
  ack.set_case_id(first);
  ack.set_decision(v1::DECISION_REJECT);
  ack.set_approver("support-lead");
  v1::AcknowledgeResponse acked;
  ASSERT_TRUE(client_->stub().Acknowledge(client_->NewContext().get(), ack, &acked).ok());

  v1::ListCasesRequest list;
  list.set_tenant_id("t1");
  list.set_state(v1::CASE_STATE_OPEN);
  v1::ListCasesResponse page;
  ASSERT_TRUE(client_->stub().ListCases(client_->NewContext().get(), list, &page).ok());
  ASSERT_THAT(page.cases(), SizeIs(1));
  EXPECT_EQ(page.cases(0).id(), second);
  list.set_state(v1::CASE_STATE_REJECTED);
  ASSERT_TRUE(client_->stub().ListCases(client_->NewContext().get(), list, &page).ok());
  ASSERT_THAT(page.cases(), SizeIs(1));
  EXPECT_EQ(page.cases(0).id(), first);
}

}  // namespace
}  // namespace agate
