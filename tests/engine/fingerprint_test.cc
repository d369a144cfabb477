// The action an approval is bound to: CanonicalAction and ActionFingerprint.
#include "engine/fingerprint.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fixtures.h"

namespace agate::engine {
namespace {

using ::testing::MatchesRegex;

Request Parse(absl::string_view text) { return testing::ParseRequest(text); }

TEST(FingerprintTest, SameActionSameFingerprintWhateverElseDiffers) {
  const Request a = Parse(
      "request_id: 'r1' tenant_id: 't1' item_id: 'i1' action { type: 'refund' amount: 250 } "
      "model { confidence: 0.2 }");
  const Request b = Parse(
      "request_id: 'r2' tenant_id: 't1' item_id: 'i9' action { type: 'refund' amount: 250.0 } "
      "model { confidence: 0.9 }");
  EXPECT_EQ(CanonicalAction(a), CanonicalAction(b));
  EXPECT_EQ(ActionFingerprint(a), ActionFingerprint(b));
  EXPECT_THAT(ActionFingerprint(a), MatchesRegex("[0-9a-f]{64}"));
}

TEST(FingerprintTest, AnyActionFieldOrTheTenantChangesIt) {
  const std::string base = "tenant_id: 't1' action { type: 'refund' amount: 250 ";
  const Request original = Parse(base + "}");
  const std::string variants[] = {
      "tenant_id: 't2' action { type: 'refund' amount: 250 }",
      base + "currency: 'EUR' }",
      base + "target: 'order-2' }",
      base + "target_tenant_id: 't1' }",
      base + "customer_facing: true }",
      base + "irreversible: true }",
      base + "critical: true }",
      base + "requested_scopes: 'admin' }",
      "tenant_id: 't1' action { type: 'refund' amount: 250.01 }",
      "tenant_id: 't1' action { type: 'credit' amount: 250 }",
  };
  for (const std::string& v : variants) {
    EXPECT_NE(CanonicalAction(Parse(v)), CanonicalAction(original)) << v;
    EXPECT_NE(ActionFingerprint(Parse(v)), ActionFingerprint(original)) << v;
  }
  // Field contents cannot forge a boundary: "ab"+"c" differs from "a"+"bc".
  EXPECT_NE(CanonicalAction(Parse("action { type: 'ab' target: 'c' }")),
            CanonicalAction(Parse("action { type: 'a' target: 'bc' }")));
}

TEST(FingerprintTest, ADeclaredListBindsExactlyItsFields) {
  const std::vector<std::string> fields = {"action.type", "action.amount", "attributes.invoice_id"};
  const Request a = Parse(
      "request_id: 'r1' tenant_id: 't1' action { type: 'refund' amount: 250 target: 'o1' } "
      "attributes { fields { key: 'invoice_id' value { string_value: 'inv-1' } } "
      "fields { key: 'trace_id' value { string_value: 'x1' } } }");
  // A retry with a new trace id and another target (not in the list): the same action.
  const Request retry = Parse(
      "request_id: 'r2' tenant_id: 't1' action { type: 'refund' amount: 250.0 target: 'o2' } "
      "attributes { fields { key: 'invoice_id' value { string_value: 'inv-1' } } "
      "fields { key: 'trace_id' value { string_value: 'x2' } } }");
  EXPECT_EQ(CanonicalAction(a, fields), CanonicalAction(retry, fields));
  EXPECT_EQ(ActionFingerprint(a, fields), ActionFingerprint(retry, fields));
  // The default set differs for them (the target) and never equals a declared list's encoding.
  EXPECT_NE(CanonicalAction(a), CanonicalAction(retry));
  EXPECT_NE(CanonicalAction(a), CanonicalAction(a, fields));
  // Another invoice, no invoice, a null one, a number instead of the string: each differs.
  const std::string base = "tenant_id: 't1' action { type: 'refund' amount: 250 } ";
  const std::string variants[] = {
      base + "attributes { fields { key: 'invoice_id' value { string_value: 'inv-2' } } }",
      base,
      base + "attributes { fields { key: 'invoice_id' value { null_value: NULL_VALUE } } }",
      base + "attributes { fields { key: 'invoice_id' value { number_value: 1 } } }",
      base +
          "attributes { fields { key: 'invoice_id' value { list_value { values { "
          "string_value: 'inv-1' } } } } }",
      "tenant_id: 't2' action { type: 'refund' amount: 250 } attributes { fields { key: "
      "'invoice_id' value { string_value: 'inv-1' } } }",
  };
  std::vector<std::string> seen = {CanonicalAction(a, fields)};
  for (const std::string& v : variants) {
    const std::string c = CanonicalAction(Parse(v), fields);
    EXPECT_THAT(seen, ::testing::Not(::testing::Contains(c))) << v;
    seen.push_back(c);
  }
}

TEST(FingerprintTest, EveryNamedFieldIsKnownOrRefusedWithTheList) {
  for (const char* field : {"action.type", "action.target", "action.amount", "action.currency",
                            "action.target_tenant_id", "action.customer_facing",
                            "action.irreversible", "action.critical", "action.requested_scopes",
                            "workflow_id", "item_id", "agent_id", "attributes.invoice_id"}) {
    EXPECT_TRUE(CheckFingerprintField(field).ok()) << field;
    // Each known field changes the encoding when its value does.
    const Request empty = Parse("tenant_id: 't1'");
    Request changed = empty;
    const std::string f = field;
    if (f == "action.type") changed.mutable_action()->set_type("x");
    if (f == "action.target") changed.mutable_action()->set_target("x");
    if (f == "action.amount") changed.mutable_action()->set_amount(1);
    if (f == "action.currency") changed.mutable_action()->set_currency("EUR");
    if (f == "action.target_tenant_id") changed.mutable_action()->set_target_tenant_id("t2");
    if (f == "action.customer_facing") changed.mutable_action()->set_customer_facing(true);
    if (f == "action.irreversible") changed.mutable_action()->set_irreversible(true);
    if (f == "action.critical") changed.mutable_action()->set_critical(true);
    if (f == "action.requested_scopes") changed.mutable_action()->add_requested_scopes("admin");
    if (f == "workflow_id") changed.set_workflow_id("w");
    if (f == "item_id") changed.set_item_id("i");
    if (f == "agent_id") changed.set_agent_id("a");
    if (f == "attributes.invoice_id") {
      (*changed.mutable_attributes()->mutable_fields())["invoice_id"].set_string_value("i");
    }
    EXPECT_NE(CanonicalAction(empty, {f}), CanonicalAction(changed, {f})) << field;
  }
  for (const char* field : {"action.colour", "attributes.", "request_id", ""}) {
    const absl::Status s = CheckFingerprintField(field);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_THAT(s.message(), ::testing::HasSubstr("one of action.type, action.target"));
  }
}

}  // namespace
}  // namespace agate::engine
