// The action an approval is bound to: CanonicalAction and ActionFingerprint.
#include "engine/fingerprint.h"

#include <string>

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

}  // namespace
}  // namespace agate::engine
