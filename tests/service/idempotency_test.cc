// IdempotencyCache and the request digest: the same request gets the same answer within the
// window, other contents under the same request_id are a conflict, memory stays bounded.
#include "service/idempotency.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fixtures.h"

namespace agate::service {

using engine::Request;
namespace {

Request Parse(absl::string_view text) { return testing::ParseRequest(text); }

v1::EvaluateResponse Answer(absl::string_view decision_id) {
  v1::EvaluateResponse r;
  r.set_decision_id(std::string(decision_id));
  r.set_verdict(v1::VERDICT_HOLD);
  return r;
}

// DecisionIdOf parses response bytes the cache kept.
std::string DecisionIdOf(const std::string& bytes) {
  v1::EvaluateResponse r;
  EXPECT_TRUE(r.ParseFromString(bytes));
  return r.decision_id();
}

TEST(RequestDigestTest, EqualContentsGiveEqualDigestsWhateverTheMapOrder) {
  const Request a = Parse(
      "request_id: 'r1' tenant_id: 't' signals { key: 'retry' value: 1 } "
      "signals { key: 'timeout' value: 2 } evidence { key: 'a' value: 'x' } "
      "evidence { key: 'b' value: 'y' }");
  const Request b = Parse(
      "request_id: 'r1' tenant_id: 't' evidence { key: 'b' value: 'y' } "
      "evidence { key: 'a' value: 'x' } signals { key: 'timeout' value: 2 } "
      "signals { key: 'retry' value: 1 }");
  EXPECT_EQ(RequestDigest(a), RequestDigest(b));
  EXPECT_EQ(RequestDigest(a).size(), 32u);
  Request c = a;
  c.mutable_action()->set_amount(0.01);
  EXPECT_NE(RequestDigest(a), RequestDigest(c));
}

TEST(RequestDigestTest, KeysSeparateTenantFromRequestId) {
  EXPECT_NE(IdempotencyKey(Parse("tenant_id: 'ab' request_id: 'c'")),
            IdempotencyKey(Parse("tenant_id: 'a' request_id: 'bc'")));
}

TEST(IdempotencyCacheTest, TheSameDigestIsAHitWithTheStoredResponse) {
  FakeClock clock;
  std::unique_ptr<IdempotencyCache> owned = *IdempotencyCache::Create(clock);
  IdempotencyCache& cache = *owned;
  std::string out;
  EXPECT_EQ(cache.Find("k", "d", &out), IdempotencyCache::kMiss);
  ASSERT_TRUE(cache.Insert("k", "d", Answer("dec1").SerializeAsString(), clock.Now()));
  EXPECT_EQ(cache.Find("k", "d", &out), IdempotencyCache::kHit);
  EXPECT_EQ(DecisionIdOf(out), "dec1");
  absl::Time when;
  EXPECT_EQ(cache.Find("k", "other", &out, &when), IdempotencyCache::kConflict);
  EXPECT_EQ(when, clock.Now());
}

TEST(IdempotencyCacheTest, FindWireAnswersOnlyTheSameBytesWithinTheWindow) {
  FakeClock clock;
  std::unique_ptr<IdempotencyCache> cache = *IdempotencyCache::Create(clock);
  const std::string wire(32, 'w');
  std::string out;
  EXPECT_FALSE(cache->FindWire("k", wire, &out));
  ASSERT_TRUE(
      cache->Insert("k", "d", Answer("dec1").SerializeAsString(), clock.Now(), nullptr, wire));
  ASSERT_TRUE(cache->Insert("k2", "d", Answer("dec2").SerializeAsString(), clock.Now()));
  EXPECT_TRUE(cache->FindWire("k", wire, &out));
  EXPECT_EQ(DecisionIdOf(out), "dec1");
  out.clear();
  EXPECT_FALSE(cache->FindWire("k", std::string(32, 'x'), &out));    // other bytes
  EXPECT_FALSE(cache->FindWire("k2", wire, &out));                   // kept without its bytes
  EXPECT_FALSE(cache->FindWire("k2", std::string(32, '\0'), &out));  // "unknown" matches nothing
  EXPECT_TRUE(out.empty());
  clock.Advance(absl::Minutes(11));
  EXPECT_FALSE(cache->FindWire("k", wire, &out));
}

TEST(IdempotencyCacheTest, TheFirstAnswerStands) {
  FakeClock clock;
  std::unique_ptr<IdempotencyCache> owned = *IdempotencyCache::Create(clock);
  IdempotencyCache& cache = *owned;
  ASSERT_TRUE(cache.Insert("k", "d", Answer("first").SerializeAsString(), clock.Now()));
  std::string existing;
  EXPECT_FALSE(
      cache.Insert("k", "d", Answer("second").SerializeAsString(), clock.Now(), &existing));
  EXPECT_EQ(DecisionIdOf(existing), "first");
}

TEST(IdempotencyCacheTest, EntriesExpireAfterTheWindow) {
  FakeClock clock;
  std::unique_ptr<IdempotencyCache> owned =
      *IdempotencyCache::Create(clock, {.window = absl::Minutes(10)});
  IdempotencyCache& cache = *owned;
  ASSERT_TRUE(cache.Insert("k", "d", Answer("old").SerializeAsString(), clock.Now()));
  clock.Advance(absl::Minutes(10) + absl::Seconds(1));
  std::string out;
  EXPECT_EQ(cache.Find("k", "d", &out), IdempotencyCache::kMiss);
  // A new decision for the key replaces the expired one.
  ASSERT_TRUE(cache.Insert("k", "other", Answer("new").SerializeAsString(), clock.Now()));
  EXPECT_EQ(cache.Find("k", "other", &out), IdempotencyCache::kHit);
  EXPECT_EQ(DecisionIdOf(out), "new");
  // Rows older than the window (e.g. read back at start-up) are not kept.
  EXPECT_TRUE(cache.Insert("stale", "d", "", clock.Now() - absl::Hours(1)));
  EXPECT_EQ(cache.Find("stale", "d", &out), IdempotencyCache::kMiss);
}

TEST(IdempotencyCacheTest, MemoryIsBoundedOldestFirst) {
  FakeClock clock;
  std::unique_ptr<IdempotencyCache> owned = *IdempotencyCache::Create(clock, {.max_entries = 160});
  IdempotencyCache& cache = *owned;  // 10 per shard
  for (int i = 0; i < 5000; ++i) {
    clock.Advance(absl::Milliseconds(1));
    cache.Insert(absl::StrCat("k", i), "d", "", clock.Now());
  }
  EXPECT_LE(cache.size(), 160u);
  EXPECT_GE(cache.size(), 100u);
  std::string out;
  EXPECT_EQ(cache.Find("k0", "d", &out), IdempotencyCache::kMiss);
  EXPECT_EQ(cache.Find("k4999", "d", &out), IdempotencyCache::kHit);
}

TEST(IdempotencyCacheTest, ReusedSlotsKeepEveryAnswerExact) {
  FakeClock clock;
  std::unique_ptr<IdempotencyCache> owned = *IdempotencyCache::Create(clock, {.max_entries = 64});
  IdempotencyCache& cache = *owned;  // 4 per shard: slots are reused often
  // Keys and answers of every size, so that a reused slot holds a shorter or a longer entry than
  // before (large answers are not kept as capacity for small ones).
  auto answer = [](int i) {
    return Answer(absl::StrCat("dec-", i, "-", std::string(static_cast<size_t>(i % 7) * 400, 'x')));
  };
  for (int i = 0; i < 2000; ++i) {
    clock.Advance(absl::Milliseconds(1));
    const std::string key = absl::StrCat(std::string(static_cast<size_t>(i % 5) * 9, 'k'), i);
    ASSERT_TRUE(
        cache.Insert(key, absl::StrCat("d", i), answer(i).SerializeAsString(), clock.Now()));
    std::string out;
    ASSERT_EQ(cache.Find(key, absl::StrCat("d", i), &out), IdempotencyCache::kHit) << i;
    EXPECT_EQ(DecisionIdOf(out), answer(i).decision_id()) << i;
    EXPECT_EQ(cache.Find(key, "another digest", &out), IdempotencyCache::kConflict) << i;
  }
  EXPECT_LE(cache.size(), 64u);
}

TEST(IdempotencyCacheTest, AnEntryReplacedPastTheWindowIsForgottenOnce) {
  FakeClock clock;
  std::unique_ptr<IdempotencyCache> owned =
      *IdempotencyCache::Create(clock, {.window = absl::Minutes(1), .max_entries = 1600});
  IdempotencyCache& cache = *owned;
  // Recent entries first, in every shard; then one decided earlier (as Recover may insert it).
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(cache.Insert(absl::StrCat("filler", i), "d", "", clock.Now()));
  }
  ASSERT_TRUE(cache.Insert("k", "d1", Answer("first").SerializeAsString(),
                           clock.Now() - absl::Seconds(50)));
  clock.Advance(absl::Seconds(30));  // fillers 30 s old, "k" 80 s: past the window, not forgotten
  std::string out;
  EXPECT_EQ(cache.Find("k", "d1", &out), IdempotencyCache::kMiss);
  // Decided anew: the new answer replaces the old one.
  ASSERT_TRUE(cache.Insert("k", "d2", Answer("second").SerializeAsString(), clock.Now()));
  ASSERT_EQ(cache.Find("k", "d2", &out), IdempotencyCache::kHit);
  EXPECT_EQ(DecisionIdOf(out), "second");
  EXPECT_EQ(cache.size(), 101u);
  clock.Advance(absl::Seconds(40));  // fillers past the window: forgotten with the old slot
  EXPECT_FALSE(cache.Insert("k", "d2", "", clock.Now()));  // forgets, then finds the kept one
  ASSERT_EQ(cache.Find("k", "d2", &out), IdempotencyCache::kHit);
  EXPECT_EQ(DecisionIdOf(out), "second");
}

TEST(IdempotencyCacheTest, ConcurrentInsertsOfOneKeyKeepExactlyOne) {
  FakeClock clock;
  std::unique_ptr<IdempotencyCache> owned = *IdempotencyCache::Create(clock);
  IdempotencyCache& cache = *owned;
  std::atomic<int> won{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        if (cache.Insert(absl::StrCat("k", i), "d", Answer(absl::StrCat(t)).SerializeAsString(),
                         clock.Now())) {
          won.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(won.load(), 1000);
  EXPECT_EQ(cache.size(), 1000u);
}

}  // namespace
}  // namespace agate::service
