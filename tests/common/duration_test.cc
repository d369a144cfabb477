#include "common/duration.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agate::engine {
namespace {

using ::testing::HasSubstr;

TEST(ParseDurationTest, ParsesTheMatrixSpellings) {
  struct Case {
    const char* text;
    absl::Duration want;
  } cases[] = {
      {"30m", absl::Minutes(30)},      {"2h", absl::Hours(2)},
      {"15m", absl::Minutes(15)},      {"4h", absl::Hours(4)},
      {"90s", absl::Seconds(90)},      {"1h30m", absl::Minutes(90)},
      {"1d", absl::Hours(24)},         {"250ms", absl::Milliseconds(250)},
      {"1h0m5s", absl::Seconds(3605)},
  };
  for (const Case& c : cases) {
    absl::StatusOr<absl::Duration> d = ParseDuration(c.text);
    ASSERT_TRUE(d.ok()) << c.text << ": " << d.status();
    EXPECT_EQ(*d, c.want) << c.text;
  }
}

TEST(ParseDurationTest, RejectsEverythingElse) {
  for (const char* text : {"", "30", "m", "30 minutes", "-5m", "1.5h", "30M", "1w", "h1", "5m ",
                           " 5m", "99999999999h"}) {
    absl::StatusOr<absl::Duration> d = ParseDuration(text);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << "'" << text << "'";
  }
  EXPECT_THAT(std::string(ParseDuration("30 minutes").status().message()),
              HasSubstr("invalid duration '30 minutes' (expected e.g. 30m"));
}

TEST(ParseDurationTest, RejectsZeroAndOverlongDurations) {
  EXPECT_THAT(std::string(ParseDuration("0m").status().message()), HasSubstr("must be positive"));
  EXPECT_THAT(std::string(ParseDuration("367d").status().message()),
              HasSubstr("longer than 366 days"));
  EXPECT_TRUE(ParseDuration("366d").ok());
}

TEST(ParseDurationTest, ReadsWhatAbslFormatDurationPrints) {
  for (const char* text : {"30m", "2h", "1h30m", "90s", "1d", "250ms", "1d2h3m4s"}) {
    absl::StatusOr<absl::Duration> d = ParseDuration(text);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(*ParseDuration(absl::FormatDuration(*d)), *d) << text;
  }
}

}  // namespace
}  // namespace agate::engine
