// The access policy file: what it reads, every error at FILE:LINE:COL, and its lookups.
#include "engine/access_policy.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agate::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<std::string> Diagnostics(const std::string& yaml) {
  std::vector<Diagnostic> found;
  (void)ParseAccessPolicy(yaml, "/etc/agate/access.yaml", &found);
  std::vector<std::string> out;
  for (const Diagnostic& d : found) out.push_back(d.ToString());
  return out;
}

TEST(AccessPolicyTest, ReadsEverySectionAndResolvesJwksPaths) {
  std::vector<Diagnostic> found;
  absl::StatusOr<std::shared_ptr<const AccessPolicy>> p =
      ParseAccessPolicy(R"(version: 1
issuers:
  - issuer: https://idp.example.com
    audience: agate
    jwks: jwks.json
    groups_claim: roles
  - {issuer: https://other, audience: agate, jwks: /abs/keys.json}
agents:
  - principal: spiffe://example.org/agent/support-bot
    tenants: [acme]
    agent_ids: [support-bot]
  - {principal: uid:1000, tenants: [acme, globex]}
operators:
  - {group: finance-approver, tenants: [acme]}
  - {group: finance-approver, tenants: [globex]}
admins:
  - subject: alice@example.com
)",
                        "/etc/agate/access.yaml", &found);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(found, IsEmpty());
  const AccessPolicy& policy = **p;
  ASSERT_EQ(policy.issuers().size(), 2u);
  EXPECT_EQ(policy.issuers()[0].jwks_path, "/etc/agate/jwks.json");
  EXPECT_EQ(policy.issuers()[0].groups_claim, "roles");
  EXPECT_EQ(policy.issuers()[1].jwks_path, "/abs/keys.json");
  EXPECT_EQ(policy.issuers()[1].groups_claim, "groups");
  const AccessPolicy::Agent* bot = policy.FindAgent("spiffe://example.org/agent/support-bot");
  ASSERT_NE(bot, nullptr);
  EXPECT_TRUE(bot->MayAct("acme"));
  EXPECT_FALSE(bot->MayAct("globex"));
  EXPECT_TRUE(bot->MayClaim("support-bot"));
  EXPECT_FALSE(bot->MayClaim("other"));
  EXPECT_TRUE(policy.FindAgent("uid:1000")->MayClaim("anything"));
  EXPECT_EQ(policy.FindAgent("nobody"), nullptr);
  EXPECT_THAT(policy.TenantsOperatedBy({"finance-approver"}), ElementsAre("acme", "globex"));
  EXPECT_TRUE(policy.Operates("finance-approver", "globex"));
  EXPECT_FALSE(policy.Operates("controller", "acme"));
  EXPECT_TRUE(policy.IsAdmin("alice@example.com"));
  EXPECT_FALSE(policy.IsAdmin("bob@example.com"));
}

TEST(AccessPolicyTest, ReportsEveryErrorAtItsPosition) {
  EXPECT_THAT(
      Diagnostics(R"(version: 2
agents:
  - principal: a
    tenants: []
  - principal: a
    tenants: [x]
    agentids: [y]
operators:
  - group: g
issuers: {}
)"),
      ElementsAre(
          "/etc/agate/access.yaml:1:1: warning: operators or admins are listed but no issuer "
          "signs their tokens: nobody can act as them",
          "/etc/agate/access.yaml:1:10: error: unsupported version '2'; this agate reads 1",
          "/etc/agate/access.yaml:4:14: error: agents #1: tenants is empty",
          "/etc/agate/access.yaml:5:5: error: agent 'a' listed twice",
          "/etc/agate/access.yaml:7:5: error: unknown key 'agentids' in agents #2 (did you mean "
          "'agent_ids'?)",
          "/etc/agate/access.yaml:9:5: error: operators #1: missing required key 'tenants'",
          "/etc/agate/access.yaml:10:10: error: issuers must be a sequence"));
}

TEST(AccessPolicyTest, WarnsWhenPeopleAreListedButNoIssuerSignsTheirTokens) {
  EXPECT_THAT(Diagnostics("version: 1\nadmins:\n  - subject: alice\n"),
              ElementsAre("/etc/agate/access.yaml:1:1: warning: operators or admins are listed "
                          "but no issuer signs their tokens: nobody can act as them"));
}

TEST(AccessPolicyTest, TellsAPolicyFromAMatrix) {
  EXPECT_TRUE(LooksLikeAccessPolicy("version: 1\nagents: []\n"));
  EXPECT_FALSE(LooksLikeAccessPolicy("version: 1\nlanes: {}\ntriggers: []\n"));
  EXPECT_FALSE(LooksLikeAccessPolicy("[[[[ not yaml"));
  EXPECT_FALSE(LooksLikeAccessPolicy(std::string(100'000, '[')));
}

}  // namespace
}  // namespace agate::engine
