// The capture's redaction (engine/redaction.h) and the matrix's `capture:` block that declares it.
#include "engine/redaction.h"

#include <string>

#include "engine/matrix.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agate::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kMatrix[] = R"(version: 1
lanes:
  review: {owner: a, sla: 1h, verdict: HOLD}
triggers:
  - {id: t, lane: review, when: 'action.type == "refund"'}
)";

TEST(RedactionTest, AcceptsTheDocumentedFieldsOnly) {
  for (const char* ok :
       {"evidence", "evidence.receipt", "attributes", "attributes.email", "action.target",
        "actor.on_behalf_of", "actor.credential_id", "model.sentiment"}) {
    EXPECT_TRUE(CheckRedactField(ok).ok()) << ok;
  }
  for (const char* bad : {"", "evidence.", "attributes.", "action.amount", "request_id", "email"}) {
    const absl::Status s = CheckRedactField(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("redact may name evidence, evidence.KEY"));
  }
}

TEST(RedactionTest, ReplacesValuesAndKeepsKeys) {
  Request r;
  (*r.mutable_evidence())["receipt"] = "r-1";
  (*r.mutable_evidence())["note"] = "n";
  (*r.mutable_attributes()->mutable_fields())["email"].set_string_value("ann@example.com");
  (*r.mutable_attributes()->mutable_fields())["region"].set_number_value(3);
  r.mutable_action()->set_target("acct-9");
  Request all = r;
  Redact({"evidence.receipt", "attributes.email", "attributes.absent", "action.target"}, &r);
  EXPECT_EQ(r.evidence().at("receipt"), kRedacted);
  EXPECT_EQ(r.evidence().at("note"), "n");
  EXPECT_EQ(r.attributes().fields().at("email").string_value(), kRedacted);
  EXPECT_EQ(r.attributes().fields().at("region").number_value(), 3);
  EXPECT_FALSE(r.attributes().fields().contains("absent"));
  EXPECT_EQ(r.action().target(), kRedacted);
  Redact({"evidence", "attributes"}, &all);
  EXPECT_EQ(all.evidence().at("note"), kRedacted);
  EXPECT_EQ(all.attributes().fields().at("region").string_value(), kRedacted);
  EXPECT_EQ(all.action().target(), "acct-9");
}

TEST(RedactionTest, TheMatrixDeclaresTheListWithPositionedErrors) {
  absl::StatusOr<std::shared_ptr<const Matrix>> m =
      ParseMatrix(std::string(kMatrix) + "capture: {redact: [attributes.email, evidence]}\n",
                  "m.yaml", nullptr);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT((*m)->capture_redact(), ElementsAre("attributes.email", "evidence"));
  m = ParseMatrix(kMatrix, "m.yaml", nullptr);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE((*m)->capture_redact().empty());

  struct Case {
    std::string capture;
    std::string want;
  };
  for (const Case& c : std::vector<Case>{
           {"capture:\n  redact: [evidence, action.amount]\n",
            "m.yaml:7:22: error: capture: redact: unknown field 'action.amount'"},
           {"capture: [evidence]\n", "m.yaml:6:10: error: capture must be a mapping"},
           {"capture: {redact: evidence}\n", "m.yaml:6:19: error: redact must be a sequence"},
           {"capture: {redcat: [evidence]}\n",
            "m.yaml:6:11: error: unknown key 'redcat' in capture (did you mean 'redact'?)"},
       }) {
    m = ParseMatrix(std::string(kMatrix) + c.capture, "m.yaml", nullptr);
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << c.capture;
    EXPECT_THAT(m.status().message(), HasSubstr(c.want)) << c.capture;
  }
}

}  // namespace
}  // namespace agate::engine
