#include "engine/duration.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace agate::engine {
namespace {

constexpr absl::Duration kMaxDuration = absl::Hours(24 * 366);

absl::Status Invalid(std::string_view text) {
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid duration '", text, "' (expected e.g. 30m, 2h, 1h30m, 90s, 1d; units d h m s ms)"));
}

}  // namespace

absl::StatusOr<absl::Duration> ParseDuration(std::string_view text) {
  std::string_view rest = text;
  if (rest.empty()) return Invalid(text);
  absl::Duration total = absl::ZeroDuration();
  while (!rest.empty()) {
    int64_t n = 0;
    size_t digits = 0;
    while (digits < rest.size() && absl::ascii_isdigit(rest[digits])) {
      n = n * 10 + (rest[digits] - '0');
      if (n > 1'000'000'000) return Invalid(text);
      ++digits;
    }
    if (digits == 0) return Invalid(text);
    rest.remove_prefix(digits);
    absl::Duration unit;
    if (rest.starts_with("ms")) {
      unit = absl::Milliseconds(1);
      rest.remove_prefix(2);
    } else if (!rest.empty() && (rest[0] == 'd' || rest[0] == 'h' || rest[0] == 'm' || rest[0] == 's')) {
      unit = rest[0] == 'd'   ? absl::Hours(24)
             : rest[0] == 'h' ? absl::Hours(1)
             : rest[0] == 'm' ? absl::Minutes(1)
                              : absl::Seconds(1);
      rest.remove_prefix(1);
    } else {
      return Invalid(text);
    }
    total += n * unit;
    if (total > kMaxDuration) {
      return absl::InvalidArgumentError(
          absl::StrCat("duration '", text, "' is longer than 366 days"));
    }
  }
  if (total <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("duration '", text, "' must be positive"));
  }
  return total;
}

std::string FormatDuration(absl::Duration d) {
  std::string out;
  int64_t ms = absl::ToInt64Milliseconds(d);
  if (ms == 0) return "0s";
  const struct {
    int64_t ms;
    const char* unit;
  } kUnits[] = {{86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}};
  for (const auto& u : kUnits) {
    if (ms >= u.ms) {
      absl::StrAppend(&out, ms / u.ms, u.unit);
      ms %= u.ms;
    }
  }
  return out;
}

}  // namespace agate::engine
