// Durations as matrix files write them: "30m", "2h", "15m", "4h", "90s", "1h30m", "1d".
// (To print one, absl::FormatDuration gives the same spelling, e.g. "1h30m".)
#ifndef AGATE_COMMON_DURATION_H_
#define AGATE_COMMON_DURATION_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace agate {

// ParseDuration parses a sequence of <integer><unit> groups, units d, h, m, s, ms (e.g. "1h30m").
// Returns INVALID_ARGUMENT for anything else, for zero, and for more than 366 days.
absl::StatusOr<absl::Duration> ParseDuration(absl::string_view text);

}  // namespace agate

#endif  // AGATE_COMMON_DURATION_H_
