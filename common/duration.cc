#include "common/duration.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace agate {
namespace {

constexpr absl::Duration kMaxDuration = absl::Hours(24 * 366);

absl::Status Invalid(absl::string_view text) {
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid duration '", text, "' (expected e.g. 30m, 2h, 1h30m, 90s, 1d; units d h m s ms)"));
}

}  // namespace

absl::StatusOr<absl::Duration> ParseDuration(absl::string_view text) {
  absl::string_view rest = text;
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
    if (absl::StartsWith(rest, "ms")) {
      unit = absl::Milliseconds(1);
      rest.remove_prefix(2);
    } else if (!rest.empty() &&
               (rest[0] == 'd' || rest[0] == 'h' || rest[0] == 'm' || rest[0] == 's')) {
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

}  // namespace agate
