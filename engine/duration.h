// Durations as matrix files write them: "30m", "2h", "15m", "4h", "90s", "1h30m", "1d".
#ifndef AGATE_ENGINE_DURATION_H_
#define AGATE_ENGINE_DURATION_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace agate::engine {

// ParseDuration parses a sequence of <integer><unit> groups, units d, h, m, s, ms (e.g. "1h30m").
// Returns INVALID_ARGUMENT for anything else, for zero, and for more than 366 days.
absl::StatusOr<absl::Duration> ParseDuration(std::string_view text);

// FormatDuration prints d the way ParseDuration reads it, e.g. "1h30m", "15m", "90s".
std::string FormatDuration(absl::Duration d);

}  // namespace agate::engine

#endif  // AGATE_ENGINE_DURATION_H_
