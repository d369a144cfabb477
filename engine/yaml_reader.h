// YamlReader: what every agate YAML file's reader shares (the matrix, the access policy, policy
// tests): loading one bounded document without letting yaml-cpp throw or recurse without end, and
// reading mappings with every problem reported as a Diagnostic at its FILE:LINE:COL — unknown keys
// (with "did you mean"), duplicates, missing or empty values, scalars that are not UTF-8.
//
// A reader collects diagnostics as it goes and never throws. Thread-compatible; the text must
// outlive the reader.
//
// Example:
//   YamlReader reader(text, "access.yaml", "the access policy");
//   std::optional<YAML::Node> root = reader.Load();
//   if (root) {
//     YamlReader::Fields fields = reader.ReadFields(*root, {"version", "agents"}, "the policy");
//     std::optional<std::string> v = reader.Required(fields, "version", *root, "the policy");
//   }
//   std::vector<Diagnostic> found = std::move(reader).TakeDiagnostics();
#ifndef AGATE_ENGINE_YAML_READER_H_
#define AGATE_ENGINE_YAML_READER_H_

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "engine/diagnostic.h"
#include "engine/yaml_source.h"

namespace agate::engine {

// Quote returns 's'.
std::string Quote(absl::string_view s);
// FormatLocation returns "LINE:COL".
std::string FormatLocation(SourceLocation l);
// DidYouMean returns " (did you mean 'x'?)" for the candidate closest to word, if one is close.
std::string DidYouMean(absl::string_view word, absl::Span<const std::string> candidates);
std::string DidYouMean(absl::string_view word, absl::Span<const absl::string_view> candidates);

// ReadYamlFile reads path, at most max_bytes ("WHAT is larger than N MiB" past it). A file that
// cannot be read is NOT_FOUND (or the errno's status); each error is also appended to
// *diagnostics (if not null) as "FILE: error: ...".
absl::StatusOr<std::string> ReadYamlFile(const std::string& path, size_t max_bytes,
                                         absl::string_view what,
                                         std::vector<Diagnostic>* diagnostics);

class YamlReader {
 public:
  // One key of a YAML mapping and its value.
  struct Entry {
    YAML::Node key;
    YAML::Node value;
  };
  // The known keys of a mapping, first occurrence of each.
  using Fields = absl::flat_hash_map<std::string, Entry>;

  // what names the document in messages ("the matrix"); max_bytes bounds the text.
  YamlReader(absl::string_view text, absl::string_view file, absl::string_view what,
             size_t max_bytes);

  // Load parses the text's one document (a second one with content is an error) and returns its
  // root, or nullopt when the text cannot be parsed (the errors are reported). A document nested
  // deeper than 64 levels is refused before yaml-cpp sees it.
  std::optional<YAML::Node> Load();

  void Error(SourceLocation at, std::string message);
  void Warning(SourceLocation at, std::string message);
  bool has_errors() const { return has_errors_; }
  const YamlSource& source() const { return source_; }
  const std::string& file() const { return file_; }

  static SourceLocation At(const YAML::Mark& mark);
  static SourceLocation At(const YAML::Node& node) { return At(node.Mark()); }
  // ValueAt is where to report a problem with an entry's value. An empty value has no position
  // of its own (yaml-cpp marks the next token), so it is reported at its key.
  static SourceLocation ValueAt(const Entry& entry);

  // ReadFields reports non-string, duplicate and unknown keys of map (a mapping) and returns the
  // known ones.
  Fields ReadFields(const YAML::Node& map, absl::Span<const absl::string_view> known,
                    absl::string_view context);
  static const Entry* Find(const Fields& fields, absl::string_view key);
  // ScalarOf returns the entry's value as a string ("" for an empty value), or reports "<key>
  // must be a scalar" or a value that is not UTF-8.
  std::optional<std::string> ScalarOf(const Entry& entry, absl::string_view key);
  // Optional returns key's scalar value, "" if absent or invalid.
  std::string Optional(const Fields& fields, absl::string_view key);
  // Required returns key's non-empty scalar value, or reports it missing (at map) or empty.
  std::optional<std::string> Required(const Fields& fields, absl::string_view key,
                                      const YAML::Node& map, absl::string_view context);
  // StringList reads a sequence of distinct non-empty strings (an empty value is an empty
  // list), reporting anything else as "<key> must be a sequence of strings", empty items and
  // duplicates.
  std::vector<std::string> StringList(const Entry& entry, absl::string_view key,
                                      absl::string_view context);

  // TakeDiagnostics returns what was reported, sorted by position, each kind capped at 100.
  std::vector<Diagnostic> TakeDiagnostics() &&;

 private:
  bool CheckDocuments(const std::string& text);

  YamlSource source_;
  std::string file_;
  std::string what_;
  size_t max_bytes_;
  std::vector<Diagnostic> diagnostics_;
  bool has_errors_ = false;
};

}  // namespace agate::engine

#endif  // AGATE_ENGINE_YAML_READER_H_
