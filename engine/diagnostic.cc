#include "engine/diagnostic.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace agate::engine {

std::string Diagnostic::ToString() const {
  const char* kind = severity == Severity::kError ? "error" : "warning";
  if (location.line == 0) return absl::StrCat(file, ": ", kind, ": ", message);
  return absl::StrCat(file, ":", location.line, ":", location.column, ": ", kind, ": ", message);
}

bool HasErrors(const std::vector<Diagnostic>& diagnostics) {
  return std::any_of(diagnostics.begin(), diagnostics.end(),
                     [](const Diagnostic& d) { return d.severity == Severity::kError; });
}

absl::Status ErrorsToStatus(const std::vector<Diagnostic>& diagnostics) {
  std::vector<std::string> lines;
  for (const Diagnostic& d : diagnostics) {
    if (d.severity == Severity::kError) lines.push_back(d.ToString());
  }
  if (lines.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
}

void SortByLocation(std::vector<Diagnostic>& diagnostics) {
  std::stable_sort(diagnostics.begin(), diagnostics.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     return std::tie(a.file, a.location) < std::tie(b.file, b.location);
                   });
}

}  // namespace agate::engine
