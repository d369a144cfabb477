// The sliding-window counts behind count(signal, window).
#include "cases/signal_counter.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fixtures.h"

namespace agate::cases {

using engine::Request;
namespace {

Request Parse(absl::string_view text) { return testing::ParseRequest(text); }

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

}  // namespace
}  // namespace agate::cases
