// Identity on a repeated token: authenticating a token seen before and checking the caller may
// evaluate allocate nothing (tests/testing/counting_new.h), so an authenticated ALLOW stays free
// of heap allocations once the principal is cached.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "gtest/gtest.h"
#include "server/identity.h"
#include "tests/testing/counting_new.h"
#include "tests/testing/pki.h"
#include "tests/testing/process.h"

namespace agate::server {
namespace {

TEST(IdentityAllocationTest, ARepeatedTokenAndItsEvaluateCheckAllocateNothing) {
  testing::TempDir dir;
  const testing::TestKey key = testing::TestKey::Generate(testing::KeyType::kEcP256);
  testing::WriteFileOrDie(dir.path() + "/jwks.json", testing::Jwks({{&key, "k1"}}));
  testing::WriteFileOrDie(dir.path() + "/access.yaml", R"(version: 1
issuers:
  - issuer: https://idp.test
    audience: agate
    jwks: jwks.json
agents:
  - principal: bot
    tenants: [acme]
    agent_ids: [support-bot]
)");
  FakeClock clock(absl::Now());
  absl::StatusOr<std::unique_ptr<Identity>> identity =
      Identity::Create(dir.path() + "/access.yaml", clock);
  ASSERT_TRUE(identity.ok()) << identity.status();
  const std::string token =
      testing::SignJwt(key, R"({"alg":"ES256","kid":"k1"})",
                       absl::StrCat(R"({"iss":"https://idp.test","aud":"agate","sub":"bot","exp":)",
                                    absl::ToUnixSeconds(clock.Now()) + 600, "}"));
  ASSERT_TRUE((*identity)->AuthenticateToken(token).ok());  // the first verification caches

  const long before = testing::Allocations();
  for (int i = 0; i < 1000; ++i) {
    absl::StatusOr<Caller> caller = (*identity)->AuthenticateToken(token);
    if (!caller.ok() || !(*identity)->MayEvaluate(*caller, "acme", "support-bot").ok()) {
      FAIL() << "the cached token was refused";
    }
  }
  EXPECT_EQ(testing::Allocations() - before, 0);

  // The counter counts: a new token is verified and cached, which allocates.
  const std::string other =
      testing::SignJwt(key, R"({"alg":"ES256","kid":"k1"})",
                       absl::StrCat(R"({"iss":"https://idp.test","aud":"agate","sub":"bot","exp":)",
                                    absl::ToUnixSeconds(clock.Now()) + 601, "}"));
  const long before_new = testing::Allocations();
  ASSERT_TRUE((*identity)->AuthenticateToken(other).ok());
  EXPECT_GT(testing::Allocations() - before_new, 0);
}

}  // namespace
}  // namespace agate::server
