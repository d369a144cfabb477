// Identity without gRPC: what a verified token makes a caller (agent, person, admin), what each
// may do, which tenants it sees, a policy reload, and development mode.
#include "server/identity.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/api.h"
#include "server/http_api.h"
#include "service/service.h"
#include "tests/testing/fixtures.h"
#include "tests/testing/pki.h"
#include "tests/testing/process.h"
#include "tests/testing/status_matchers.h"

namespace agate::server {
namespace {

using ::agate::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kPolicy[] = R"(version: 1
issuers:
  - issuer: https://idp.test
    audience: agate
    jwks: jwks.json
agents:
  - principal: bot
    tenants: [acme]
    agent_ids: [support-bot]
operators:
  - group: finance-approver
    tenants: [acme]
  - group: globex-finance
    tenants: [globex]
admins:
  - subject: root
)";

class IdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteFileOrDie(dir_.path() + "/jwks.json", testing::Jwks({{&key_, "k1"}}));
    testing::WriteFileOrDie(dir_.path() + "/access.yaml", kPolicy);
    absl::StatusOr<std::unique_ptr<Identity>> identity =
        Identity::Create(dir_.path() + "/access.yaml", clock_);
    ASSERT_TRUE(identity.ok()) << identity.status();
    identity_ = *std::move(identity);
  }

  std::string Token(const std::string& subject, const std::string& groups = "[]") {
    const int64_t now = absl::ToUnixSeconds(clock_.Now());
    return testing::SignJwt(
        key_, R"({"alg":"ES256","kid":"k1"})",
        absl::StrCat(R"({"iss":"https://idp.test","aud":"agate","sub":")", subject,
                     R"(","groups":)", groups, R"(,"exp":)", now + 600, "}"));
  }
  Caller As(const std::string& subject, const std::string& groups = "[]") {
    absl::StatusOr<Caller> caller = identity_->AuthenticateToken(Token(subject, groups));
    EXPECT_TRUE(caller.ok()) << caller.status();
    return *caller;
  }
  static v1::EvaluateRequest Request(const std::string& tenant, const std::string& agent_id) {
    v1::EvaluateRequest r;
    r.set_request_id("r1");
    r.set_tenant_id(tenant);
    r.set_agent_id(agent_id);
    return r;
  }

  testing::TempDir dir_;
  FakeClock clock_{absl::Now()};
  const testing::TestKey key_ = testing::TestKey::Generate(testing::KeyType::kEcP256);
  std::unique_ptr<Identity> identity_;
};

TEST_F(IdentityTest, ATokenMakesAnAgentAPersonOrAnAdmin) {
  EXPECT_EQ(As("bot").principal().kind(), v1::PRINCIPAL_KIND_AGENT);
  EXPECT_EQ(As("root").principal().kind(), v1::PRINCIPAL_KIND_ADMIN);
  const Caller bob = As("bob", R"(["finance-approver"])");
  EXPECT_EQ(bob.principal().kind(), v1::PRINCIPAL_KIND_PERSON);
  EXPECT_EQ(bob.principal().issuer(), "https://idp.test");
  EXPECT_THAT(identity_->AuthenticateToken("not-a-token"),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("malformed")));
}

TEST_F(IdentityTest, OnlyAgentsEvaluateForTheirTenantsAsTheirAgentIds) {
  const Caller bot = As("bot");
  EXPECT_TRUE(identity_->MayEvaluate(bot, Request("acme", "support-bot")).ok());
  EXPECT_THAT(identity_->MayEvaluate(bot, Request("globex", "support-bot")),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("tenant_id: agent bot may not act for tenant 'globex'")));
  EXPECT_THAT(identity_->MayEvaluate(bot, Request("acme", "other")),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("agent_id: bot may act as support-bot, not 'other'")));
  EXPECT_THAT(identity_->MayEvaluate(As("root"), Request("acme", "support-bot")),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("not an agent")));
}

TEST_F(IdentityTest, CallersSeeTheirTenantsAndAdminsEverything) {
  EXPECT_TRUE(identity_->Sees(As("root")).all());
  const cases::TenantScope bob = identity_->Sees(As("bob", R"(["finance-approver"])"));
  EXPECT_TRUE(bob.Contains("acme"));
  EXPECT_FALSE(bob.Contains("globex"));
  const cases::TenantScope bot = identity_->Sees(As("bot"));
  EXPECT_TRUE(bot.Contains("acme"));
  EXPECT_FALSE(bot.Contains("globex"));
  const cases::TenantScope nobody = identity_->Sees(As("eve", R"(["unknown-group"])"));
  EXPECT_FALSE(nobody.Contains("acme"));
  EXPECT_TRUE(identity_->MayAdminister(As("root")).ok());
  EXPECT_THAT(identity_->MayAdminister(As("bob")),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("not an admin")));
}

TEST_F(IdentityTest, ARepeatedTokenIsTheSamePrincipal) {
  const std::string token = Token("bob", R"(["finance-approver"])");
  absl::StatusOr<Caller> a = identity_->AuthenticateToken(token);
  absl::StatusOr<Caller> b = identity_->AuthenticateToken(token);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->verified.get(), b->verified.get());  // cached: nothing is rebuilt
}

TEST_F(IdentityTest, AReloadAppliesANewPolicyAndABadOneKeepsTheOld) {
  EXPECT_EQ(As("carol").principal().kind(), v1::PRINCIPAL_KIND_PERSON);
  testing::WriteFileOrDie(dir_.path() + "/access.yaml",
                          absl::StrCat(kPolicy, "  - subject: carol\n"));
  ASSERT_TRUE(identity_->Reload().ok());
  EXPECT_EQ(As("carol").principal().kind(), v1::PRINCIPAL_KIND_ADMIN);
  testing::WriteFileOrDie(dir_.path() + "/access.yaml", "version: 1\nagents: [oops\n");
  EXPECT_THAT(identity_->Reload(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("access.yaml:")));
  EXPECT_EQ(As("carol").principal().kind(), v1::PRINCIPAL_KIND_ADMIN);  // the old one applies
}

// GET /v1/whoami (Api::WhoAmI, rendered by HttpApi): what the console shows buttons for.
TEST_F(IdentityTest, WhoAmISaysWhichGroupsAPersonAcknowledgesForWithTheirTenants) {
  std::unique_ptr<service::Service> service = *service::Service::Create(testing::BundledMatrix());
  Api api(*service, *identity_);
  HttpApi http(api, {});
  auto whoami = [&](const std::string& subject, const std::string& groups) {
    const std::string header = "Bearer " + Token(subject, groups);
    HttpRequest r{.method = "GET", .path = "/v1/whoami"};
    r.headers.emplace_back("Authorization", header);
    return http.Handle(r);
  };
  const HttpAnswer bob = whoami("bob", R"(["globex-finance","finance-approver","not-in-policy"])");
  EXPECT_EQ(bob.status, 200) << bob.body;
  EXPECT_THAT(bob.body, HasSubstr(R"("subject":"bob")"));
  EXPECT_THAT(bob.body, HasSubstr(R"("kind":"PRINCIPAL_KIND_PERSON")"));
  EXPECT_THAT(bob.body, HasSubstr(R"("development":false,"admin":false,)"
                                  R"("groups":{"finance-approver":["acme"],)"
                                  R"("globex-finance":["globex"]}})"));
  EXPECT_THAT(whoami("root", "[]").body, HasSubstr(R"("admin":true,"groups":{}})"));
  const HttpAnswer agent = whoami("bot", R"(["finance-approver"])");
  EXPECT_THAT(agent.body, HasSubstr(R"("kind":"PRINCIPAL_KIND_AGENT")"));
  EXPECT_THAT(agent.body, HasSubstr(R"("admin":false,"groups":{}})")) << "agents never approve";

  const HttpAnswer none = http.Handle({.method = "GET", .path = "/v1/whoami"});
  EXPECT_EQ(none.status, 401);
  EXPECT_THAT(none.body, HasSubstr("no credential"));
  HttpRequest bad{.method = "GET", .path = "/v1/whoami"};
  bad.headers.emplace_back("Authorization", "Bearer not-a-token");
  EXPECT_EQ(http.Handle(bad).status, 401);
  HttpRequest query{.method = "GET", .path = "/v1/whoami"};
  query.params.emplace_back("as", "root");
  EXPECT_EQ(http.Handle(query).status, 400) << "no parameters";
  EXPECT_EQ(http.Handle({.method = "POST", .path = "/v1/whoami"}).status, 405);
}

TEST(IdentityCreateTest, DevelopmentModeNeedsNoPolicyAndABadPolicyIsAStartError) {
  absl::StatusOr<std::unique_ptr<Identity>> dev = Identity::Create("");
  ASSERT_TRUE(dev.ok());
  EXPECT_TRUE((*dev)->development());
  EXPECT_EQ((*dev)->Summary(), "development mode");
  testing::TempDir dir;
  testing::WriteFileOrDie(
      dir.path() + "/access.yaml",
      "version: 1\nissuers:\n  - issuer: x\n    audience: a\n    jwks: missing.json\n");
  EXPECT_THAT(Identity::Create(dir.path() + "/access.yaml"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.json")));
}

}  // namespace
}  // namespace agate::server
