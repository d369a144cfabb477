// The sliding-window counts behind count(signal, window), and the action fingerprint.
#include "engine/signal_counter.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "engine/fingerprint.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace agate::engine {
namespace {

using ::testing::MatchesRegex;

Request Parse(absl::string_view text) {
  Request r;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(std::string(text), &r)) << text;
  return r;
}

Request Retries(int n, absl::string_view tenant = "t1", absl::string_view workflow = "w1") {
  return Parse(absl::StrCat("tenant_id: '", tenant, "' workflow_id: '", workflow,
                            "' signals { key: 'retry' value: ", n, " }"));
}

TEST(SignalCounterTest, CountsEventsOfTheSameTenantAndWorkflowWithinTheWindow) {
  FakeClock clock;
  SlidingWindowCounter counter(clock);
  counter.Record(Retries(2));
  clock.Advance(absl::Minutes(5));
  counter.Record(Retries(1));
  const Request probe = Retries(0);
  EXPECT_EQ(counter.Count(probe, "retry", absl::Minutes(10)), 3);
  EXPECT_EQ(counter.Count(probe, "retry", absl::Minutes(4)), 1);
  EXPECT_EQ(counter.Count(probe, "timeout", absl::Minutes(10)), 0);
  EXPECT_EQ(counter.Count(Retries(0, "t2"), "retry", absl::Minutes(10)), 0);
  EXPECT_EQ(counter.Count(Retries(0, "t1", "w2"), "retry", absl::Minutes(10)), 0);
  clock.Advance(absl::Minutes(5));  // the first two are now exactly 10 minutes old
  EXPECT_EQ(counter.Count(probe, "retry", absl::Minutes(10)), 1);
  clock.Advance(absl::Minutes(5));
  EXPECT_EQ(counter.Count(probe, "retry", absl::Minutes(10)), 0);
}

TEST(SignalCounterTest, SubSecondWindowsStillSeeTheRequestsOwnEvents) {
  FakeClock clock;
  SlidingWindowCounter counter(clock);
  counter.Record(Retries(4));
  EXPECT_EQ(counter.Count(Retries(0), "retry", absl::Milliseconds(500)), 4);
}

TEST(SignalCounterTest, ZeroAndNegativeCountsAreIgnored) {
  FakeClock clock;
  SlidingWindowCounter counter(clock);
  counter.Record(Retries(0));
  counter.Record(Retries(-3));
  EXPECT_EQ(counter.keys(), 0u);
}

TEST(SignalCounterTest, MemoryPerKeyIsBoundedAndCountsOnlyErrUpwards) {
  FakeClock clock;
  SlidingWindowCounter counter(clock);
  const int kSeconds = 3 * static_cast<int>(SlidingWindowCounter::kMaxBuckets);
  for (int i = 0; i < kSeconds; ++i) {
    counter.Record(Retries(1));
    clock.Advance(absl::Seconds(1));
  }
  // The clock is one second past the last event: the last 100 seconds hold 99 events exactly;
  // merged buckets may only add to that.
  const int64_t recent = counter.Count(Retries(0), "retry", absl::Seconds(100));
  EXPECT_GE(recent, 99);
  EXPECT_LE(recent, kSeconds);
  // Nothing is lost over the whole span.
  EXPECT_EQ(counter.Count(Retries(0), "retry", absl::Hours(1)), kSeconds);
}

TEST(SignalCounterTest, KeysAreBoundedAndStaleKeysGoFirst) {
  FakeClock clock;
  SlidingWindowCounter counter(clock, {.max_keys = 32, .max_window = absl::Minutes(10)});
  for (int i = 0; i < 1000; ++i) counter.Record(Retries(1, absl::StrCat("t", i)));
  EXPECT_LE(counter.keys(), 32u);
  clock.Advance(absl::Minutes(11));
  counter.Record(Retries(1, "fresh"));
  EXPECT_EQ(counter.Count(Retries(0, "fresh"), "retry", absl::Minutes(10)), 1);
}

TEST(FingerprintTest, SameActionSameFingerprintWhateverElseDiffers) {
  const Request a = Parse(
      "request_id: 'r1' tenant_id: 't1' item_id: 'i1' action { type: 'refund' amount: 250 } "
      "model { confidence: 0.2 }");
  const Request b = Parse(
      "request_id: 'r2' tenant_id: 't1' item_id: 'i9' action { type: 'refund' amount: 250.0 } "
      "model { confidence: 0.9 }");
  EXPECT_EQ(CanonicalAction(a), CanonicalAction(b));
  EXPECT_EQ(ActionFingerprint(a), ActionFingerprint(b));
  EXPECT_THAT(ActionFingerprint(a), MatchesRegex("[0-9a-f]{16}"));
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
