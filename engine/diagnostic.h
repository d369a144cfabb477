// Diagnostics about a matrix file: errors and lint warnings with their position.
//
// A Diagnostic prints as the compilers' `FILE:LINE:COL: error: message` (or `warning:`), so
// editors and CI logs can jump to it. Lines and columns are 1-based; 0 means unknown.
#ifndef AGATE_ENGINE_DIAGNOSTIC_H_
#define AGATE_ENGINE_DIAGNOSTIC_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace agate::engine {

// A position in a source file, 1-based.
struct SourceLocation {
  int line = 0;
  int column = 0;

  friend bool operator==(const SourceLocation&, const SourceLocation&) = default;
  friend auto operator<=>(const SourceLocation&, const SourceLocation&) = default;
};

enum class Severity { kError, kWarning };

struct Diagnostic {
  std::string file;
  SourceLocation location;
  Severity severity = Severity::kError;
  std::string message;

  // ToString renders `FILE:LINE:COL: error: message` (or `warning:`); `FILE: error: message`
  // when the location is unknown (e.g. the file cannot be read).
  std::string ToString() const;
};

// HasErrors returns true if any diagnostic is an error.
bool HasErrors(const std::vector<Diagnostic>& diagnostics);

// ErrorsToStatus returns OK when there is no error, else INVALID_ARGUMENT whose message is
// every error's ToString(), one per line, in the given order.
absl::Status ErrorsToStatus(const std::vector<Diagnostic>& diagnostics);

// SortByLocation orders diagnostics by file, line, column (stable for equal positions).
void SortByLocation(std::vector<Diagnostic>& diagnostics);

}  // namespace agate::engine

#endif  // AGATE_ENGINE_DIAGNOSTIC_H_
