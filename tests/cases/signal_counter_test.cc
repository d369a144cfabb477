// The sliding-window counts behind count(signal, window).
#include "cases/signal_counter.h"

#include <string>
#include <vector>

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

TEST(SignalCounterTest, OtherReplicasEventsAreSummedAndNeverExportedAsOwn) {
  FakeClock clock;
  SlidingWindowCounter a(clock);
  SlidingWindowCounter b(clock);
  a.Record(Retries(2));
  b.Record(Retries(1));
  clock.Advance(absl::Minutes(5));
  b.Record(Retries(4));
  b.Record(Retries(1, "t2"));
  a.SetOthers(b.Export());
  const Request probe = Retries(0);
  EXPECT_EQ(a.Count(probe, "retry", absl::Minutes(10)), 2 + 1 + 4);
  EXPECT_EQ(a.Count(probe, "retry", absl::Minutes(4)), 4);
  EXPECT_EQ(a.Count(Retries(0, "t2"), "retry", absl::Minutes(10)), 1);
  // a exports its own events only: b summing them back counts nothing twice.
  b.SetOthers(a.Export());
  EXPECT_EQ(b.Count(probe, "retry", absl::Minutes(10)), 2 + 1 + 4);
  EXPECT_EQ(b.Count(Retries(0, "t2"), "retry", absl::Minutes(10)), 1);
  // Two replicas' series of one key add up; a new exchange replaces the last one.
  SlidingWindowCounter c(clock);
  c.Record(Retries(10));
  std::vector<store::v1::StoredSignalSeries> both = b.Export();
  for (const store::v1::StoredSignalSeries& s : c.Export()) both.push_back(s);
  a.SetOthers(both);
  EXPECT_EQ(a.Count(probe, "retry", absl::Minutes(10)), 2 + 1 + 4 + 10);
  a.SetOthers({});
  EXPECT_EQ(a.Count(probe, "retry", absl::Minutes(10)), 2);
  EXPECT_EQ(a.Count(Retries(0, "t2"), "retry", absl::Minutes(10)), 0);
  EXPECT_EQ(a.keys(), 1u);  // the keys only others had are gone
  // The other replicas' events leave the window as one's own do.
  a.SetOthers(b.Export());
  clock.Advance(absl::Minutes(6));
  EXPECT_EQ(a.Count(probe, "retry", absl::Minutes(10)), 4);
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
