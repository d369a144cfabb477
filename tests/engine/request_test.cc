#include "engine/request.h"

#include <cmath>
#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace agate::engine {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

Request Valid() {
  Request r;
  r.set_request_id("req-1");
  r.set_tenant_id("t1");
  r.mutable_action()->set_type("send_reply");
  r.mutable_model()->set_confidence(0.9);
  return r;
}

TEST(ValidateRequestTest, AcceptsAMinimalRequest) { EXPECT_TRUE(ValidateRequest(Valid()).ok()); }

TEST(ValidateRequestTest, AcceptsBoundaryValues) {
  Request r = Valid();
  r.mutable_model()->set_confidence(0.0);
  EXPECT_TRUE(ValidateRequest(r).ok());
  r.mutable_model()->set_confidence(1.0);
  r.mutable_action()->set_amount(0.0);
  (*r.mutable_signals())["retry"] = 0;
  EXPECT_TRUE(ValidateRequest(r).ok());
}

struct BadCase {
  std::string name;
  std::string mutation;  // text-format fields merged into Valid()
  std::string want_prefix;
};

class ValidateRequestBadTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(ValidateRequestBadTest, RejectsWithTheFieldName) {
  Request r = Valid();
  ASSERT_TRUE(google::protobuf::TextFormat::MergeFromString(GetParam().mutation, &r));
  absl::Status s = ValidateRequest(r);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), StartsWith(GetParam().want_prefix));
}

const std::string kLong300(300, 'x');
const std::string kLong2000(2000, 'y');

INSTANTIATE_TEST_SUITE_P(
    Cases, ValidateRequestBadTest,
    ::testing::Values(
        BadCase{"MissingRequestId", "request_id: ''", "request_id: required"},
        BadCase{"MissingTenantId", "tenant_id: ''", "tenant_id: required"},
        BadCase{"ConfidenceAboveOne", "model { confidence: 1.5 }",
                "model.confidence: must be in [0, 1], got 1.5"},
        BadCase{"ConfidenceNegative", "model { confidence: -0.1 }",
                "model.confidence: must be in [0, 1]"},
        BadCase{"ConfidenceNaN", "model { confidence: nan }",
                "model.confidence: must be in [0, 1]"},
        BadCase{"NegativeAmount", "action { amount: -1 }",
                "action.amount: must be a finite number >= 0, got -1"},
        BadCase{"InfiniteAmount", "action { amount: inf }", "action.amount: must be a finite"},
        BadCase{"NaNAmount", "action { amount: nan }", "action.amount: must be a finite"},
        BadCase{"LongRequestId", "request_id: '" + kLong300 + "'",
                "request_id: longer than 256 bytes (300)"},
        BadCase{"LongTenantId", "tenant_id: '" + kLong300 + "'", "tenant_id: longer than 256"},
        BadCase{"LongWorkflowId", "workflow_id: '" + kLong300 + "'", "workflow_id: longer than"},
        BadCase{"LongActionType", "action { type: '" + kLong2000 + "' }",
                "action.type: longer than 1024 bytes"},
        BadCase{"LongSentiment", "model { sentiment: '" + kLong2000 + "' }",
                "model.sentiment: longer than"},
        BadCase{"LongScopeItem", "action { requested_scopes: '" + kLong2000 + "' }",
                "action.requested_scopes[0]: longer than"},
        BadCase{"NegativeSignal", "signals { key: 'retry' value: -2 }",
                "signals.retry: must be >= 0, got -2"},
        BadCase{"EmptySignalName", "signals { key: '' value: 1 }", "signals: empty signal name"},
        BadCase{"NonFiniteAttribute",
                "attributes { fields { key: 'x' value { number_value: inf } } }",
                "attributes.x: must be a finite number"},
        BadCase{"NestedNonFiniteAttribute",
                "attributes { fields { key: 'a' value { list_value { values { number_value: nan } "
                "} } } }",
                "attributes.a[0]: must be a finite number"},
        BadCase{"LongAttributeString",
                "attributes { fields { key: 'note' value { string_value: '" +
                    std::string(5000, 'z') + "' } } }",
                "attributes.note: longer than 4096 bytes"},
        BadCase{"EmptyEvidenceName", "evidence { key: '' value: 'x' }",
                "evidence: empty evidence name"},
        BadCase{"LongCaseId", "approval { case_id: '" + kLong300 + "' }",
                "approval.case_id: longer than"}),
    [](const auto& info) { return info.param.name; });

TEST(ValidateRequestTest, RejectsTooManyListItems) {
  Request r = Valid();
  for (int i = 0; i < 65; ++i) r.mutable_action()->add_requested_scopes("s");
  EXPECT_THAT(std::string(ValidateRequest(r).message()),
              StartsWith("action.requested_scopes: at most 64 items, got 65"));
  r = Valid();
  for (int i = 0; i < 65; ++i) r.mutable_actor()->add_scopes("s");
  EXPECT_THAT(std::string(ValidateRequest(r).message()), StartsWith("actor.scopes: at most 64"));
  r = Valid();
  for (int i = 0; i < 65; ++i) r.mutable_model()->add_labels("l");
  EXPECT_THAT(std::string(ValidateRequest(r).message()), StartsWith("model.labels: at most 64"));
}

TEST(ValidateRequestTest, RejectsTooManySignalsAndEvidence) {
  Request r = Valid();
  for (int i = 0; i < 65; ++i) (*r.mutable_signals())["s" + std::to_string(i)] = 1;
  EXPECT_THAT(std::string(ValidateRequest(r).message()),
              StartsWith("signals: at most 64 entries, got 65"));
  r = Valid();
  for (int i = 0; i < 33; ++i) (*r.mutable_evidence())["e" + std::to_string(i)] = "x";
  EXPECT_THAT(std::string(ValidateRequest(r).message()),
              StartsWith("evidence: at most 32 entries, got 33"));
  r = Valid();
  (*r.mutable_evidence())["log"] = std::string(64 * 1024 + 1, 'x');
  EXPECT_THAT(std::string(ValidateRequest(r).message()), StartsWith("evidence.log: longer than"));
}

TEST(ValidateRequestTest, RejectsTooManyAttributeValuesCountedAtEveryLevel) {
  Request r = Valid();
  auto* fields = r.mutable_attributes()->mutable_fields();
  for (int i = 0; i < 257; ++i) (*fields)["k" + std::to_string(i)].set_bool_value(true);
  EXPECT_THAT(std::string(ValidateRequest(r).message()),
              StartsWith("attributes: more than 256 values"));

  r = Valid();
  auto* list = (*r.mutable_attributes()->mutable_fields())["list"].mutable_list_value();
  for (int i = 0; i < 300; ++i) list->add_values()->set_number_value(i);
  EXPECT_THAT(std::string(ValidateRequest(r).message()),
              StartsWith("attributes: more than 256 values"));
}

TEST(ValidateRequestTest, RejectsAttributesNestedTooDeep) {
  Request r = Valid();
  google::protobuf::Struct* s = r.mutable_attributes();
  for (int depth = 1; depth <= 9; ++depth) {
    s = (*s->mutable_fields())["n"].mutable_struct_value();
  }
  EXPECT_THAT(std::string(ValidateRequest(r).message()), HasSubstr("nested deeper than 8 levels"));

  Request ok = Valid();
  s = ok.mutable_attributes();
  for (int depth = 2; depth <= 8; ++depth) {
    s = (*s->mutable_fields())["n"].mutable_struct_value();
  }
  EXPECT_TRUE(ValidateRequest(ok).ok()) << ValidateRequest(ok);
}

TEST(ValidateRequestTest, HonoursCustomLimits) {
  RequestLimits limits;
  limits.max_id_bytes = 4;
  Request r = Valid();
  EXPECT_THAT(std::string(ValidateRequest(r, limits).message()),
              StartsWith("request_id: longer than 4 bytes (5)"));
}

}  // namespace
}  // namespace agate::engine
