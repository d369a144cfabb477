#include "engine/verdict.h"

#include "absl/container/flat_hash_set.h"
#include "engine/decision.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agate::engine {
namespace {

TEST(VerdictTest, RestrictivenessOrderIsDenyBlockSafeModeHoldParkAllow) {
  const Verdict order[] = {v1::VERDICT_ALLOW,     v1::VERDICT_PARK_ITEM, v1::VERDICT_HOLD,
                           v1::VERDICT_SAFE_MODE, v1::VERDICT_BLOCK,     v1::VERDICT_DENY};
  for (size_t i = 0; i < std::size(order); ++i) {
    for (size_t j = 0; j < std::size(order); ++j) {
      EXPECT_EQ(MoreRestrictive(order[i], order[j]), i > j) << i << " vs " << j;
    }
  }
}

TEST(VerdictTest, NamesRoundTripAndAcceptMatrixSpellings) {
  for (Verdict v : {v1::VERDICT_ALLOW, v1::VERDICT_PARK_ITEM, v1::VERDICT_HOLD,
                    v1::VERDICT_SAFE_MODE, v1::VERDICT_BLOCK, v1::VERDICT_DENY}) {
    EXPECT_EQ(ParseVerdict(VerdictName(v)), v);
  }
  EXPECT_EQ(ParseVerdict("hold"), v1::VERDICT_HOLD);
  EXPECT_EQ(ParseVerdict("VERDICT_PARK_ITEM"), v1::VERDICT_PARK_ITEM);
  EXPECT_EQ(ParseVerdict("HOLDD"), std::nullopt);
  EXPECT_EQ(ParseVerdict(""), std::nullopt);
  EXPECT_EQ(ParseScope("Workflow"), v1::SCOPE_WORKFLOW);
  EXPECT_EQ(ParseScope("tenant"), std::nullopt);
  EXPECT_EQ(ParseTimeoutBehavior("route_to_fallback"), v1::TIMEOUT_BEHAVIOR_ROUTE_TO_FALLBACK);
  EXPECT_EQ(TimeoutBehaviorName(v1::TIMEOUT_BEHAVIOR_EXPIRE), "expire");
  EXPECT_EQ(ParseTimeoutBehavior("retry"), std::nullopt);
}

TEST(DecisionIdTest, IdsAreUniqueWellFormedAndTimeOrdered) {
  absl::flat_hash_set<std::string> seen;
  const absl::Time t0 = absl::FromUnixMillis(1'800'000'000'000);
  std::string previous;
  for (int i = 0; i < 10000; ++i) {
    DecisionId id = DecisionId::Next(t0 + absl::Milliseconds(i / 100));
    std::string s(id.view());
    ASSERT_EQ(s.size(), 26u);
    ASSERT_EQ(s.find_first_not_of("0123456789ABCDEFGHJKMNPQRSTVWXYZ"), std::string::npos) << s;
    EXPECT_TRUE(seen.insert(s).second) << "duplicate " << s;
    if (i % 100 == 0 && !previous.empty()) {
      EXPECT_LT(previous.substr(0, 10), s.substr(0, 10));
    }
    previous = s;
  }
}

}  // namespace
}  // namespace agate::engine
