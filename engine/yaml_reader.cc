#include "engine/yaml_reader.h"

#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <exception>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/bounded_file.h"
#include "common/utf8.h"

namespace agate::engine {
namespace {

// yaml-cpp recurses once per nesting level; agate's files need four or five.
constexpr int kMaxNesting = 64;
// Past this many, more errors (or warnings) of a file are counted, not listed.
constexpr size_t kMaxReported = 100;

// EditDistance is the Levenshtein distance of a and b, ignoring case.
size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      const bool same = absl::ascii_tolower(a[i - 1]) == absl::ascii_tolower(b[j - 1]);
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

template <typename Candidates>
std::string Suggest(absl::string_view word, const Candidates& candidates) {
  if (word.size() > 64) return "";
  size_t best = 3;  // suggest at distance 2 at most
  absl::string_view suggestion;
  for (absl::string_view candidate : candidates) {
    if (candidate.size() > 64) continue;
    const size_t d = EditDistance(word, candidate);
    if (d < best && d < std::max<size_t>(word.size(), 2)) {
      best = d;
      suggestion = candidate;
    }
  }
  if (suggestion.empty()) return "";
  return absl::StrCat(" (did you mean ", Quote(suggestion), "?)");
}

// DocumentEvents notes where a document starts and whether it holds anything.
class DocumentEvents : public YAML::EventHandler {
 public:
  YAML::Mark start;
  bool has_content = false;
  void OnDocumentStart(const YAML::Mark& mark) override {
    start = mark;
    has_content = false;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override { has_content = true; }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {
    has_content = true;
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    has_content = true;
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    has_content = true;
  }
  void OnMapEnd() override {}
};

}  // namespace

std::string Quote(absl::string_view s) { return absl::StrCat("'", s, "'"); }

std::string FormatLocation(SourceLocation l) { return absl::StrCat(l.line, ":", l.column); }

std::string DidYouMean(absl::string_view word, absl::Span<const std::string> candidates) {
  return Suggest(word, candidates);
}

std::string DidYouMean(absl::string_view word, absl::Span<const absl::string_view> candidates) {
  return Suggest(word, candidates);
}

absl::StatusOr<std::string> ReadYamlFile(const std::string& path, size_t max_bytes,
                                         absl::string_view what,
                                         std::vector<Diagnostic>* diagnostics) {
  absl::StatusOr<std::string> text = ReadBoundedFile(path, max_bytes);
  if (text.ok()) return text;
  const bool too_large = absl::IsOutOfRange(text.status());
  Diagnostic d{path,
               {},
               Severity::kError,
               too_large ? absl::StrCat(what, " is ", text.status().message())
                         : std::string(text.status().message())};
  absl::Status status(too_large ? absl::StatusCode::kInvalidArgument : text.status().code(),
                      d.ToString());
  if (diagnostics != nullptr) diagnostics->push_back(std::move(d));
  return status;
}

YamlReader::YamlReader(absl::string_view text, absl::string_view file, absl::string_view what,
                       size_t max_bytes)
    : source_(text), file_(file), what_(what), max_bytes_(max_bytes) {}

void YamlReader::Error(SourceLocation at, std::string message) {
  diagnostics_.push_back(Diagnostic{file_, at, Severity::kError, std::move(message)});
  has_errors_ = true;
}

void YamlReader::Warning(SourceLocation at, std::string message) {
  diagnostics_.push_back(Diagnostic{file_, at, Severity::kWarning, std::move(message)});
}

SourceLocation YamlReader::At(const YAML::Mark& mark) {
  if (mark.line < 0 || mark.column < 0) return {};
  return SourceLocation{mark.line + 1, mark.column + 1};
}

SourceLocation YamlReader::ValueAt(const Entry& entry) {
  return entry.value.IsNull() ? At(entry.key) : At(entry.value);
}

std::optional<YAML::Node> YamlReader::Load() {
  if (source_.text().size() > max_bytes_) {
    Error({}, absl::StrCat(what_, " is larger than ", MiB(max_bytes_), " (", source_.text().size(),
                           " bytes)"));
    return std::nullopt;
  }
  if (std::optional<SourceLocation> at = FindDeepNesting(source_.text(), kMaxNesting)) {
    Error(*at, absl::StrCat("the document is nested deeper than ", kMaxNesting, " levels"));
    return std::nullopt;
  }
  try {
    const std::string text(source_.text());
    if (!CheckDocuments(text)) return std::nullopt;
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    Error(At(e.mark), absl::StrCat("invalid YAML: ", e.msg));
  } catch (const std::exception& e) {
    Error({}, absl::StrCat("cannot parse ", what_, ": ", e.what()));
  }
  return std::nullopt;
}

// CheckDocuments walks the YAML stream's documents with yaml-cpp's event parser (which does not
// expand aliases) and reports a second document with content. yaml-cpp 0.7 can stop making
// progress (a stray ',' at the top level reads as an endless stream of empty documents:
// YAML::LoadAll never returns), so a document that starts where the previous one did is an error.
// Returns false if the text cannot be parsed. Throws YAML::Exception.
bool YamlReader::CheckDocuments(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentEvents events;
  std::optional<YAML::Mark> previous;
  // Each document but a stuck one consumes input; the cap is a second line of defence.
  constexpr int kMaxDocuments = 1 << 20;
  for (int document = 1; document <= kMaxDocuments && parser.HandleNextDocument(events);
       ++document) {
    if (previous.has_value() && previous->pos == events.start.pos) {
      const std::optional<size_t> at = source_.OffsetOfMark(events.start.line, events.start.column);
      const std::string unexpected =
          at.has_value() && *at < text.size() ? Quote(text.substr(*at, 1)) : "text";
      Error(At(events.start), absl::StrCat("invalid YAML: unexpected ", unexpected));
      return false;
    }
    if (document >= 2 && events.has_content) {
      Error(At(events.start), absl::StrCat(what_, " is one YAML document; this is a second one"));
      return true;
    }
    previous = events.start;
  }
  return true;
}

YamlReader::Fields YamlReader::ReadFields(const YAML::Node& map,
                                          absl::Span<const absl::string_view> known,
                                          absl::string_view context) {
  Fields fields;
  absl::flat_hash_map<std::string, SourceLocation> seen;
  for (YAML::const_iterator it = map.begin(); it != map.end(); ++it) {
    // A copy: it-> returns a temporary proxy, so a reference to it->first would dangle.
    const YAML::Node key = it->first;
    if (!key.IsScalar()) {
      Error(At(key), absl::StrCat("keys of ", context, " must be strings"));
      continue;
    }
    const std::string& name = key.Scalar();
    auto [first, inserted] = seen.try_emplace(name, At(key));
    if (!inserted) {
      Error(At(key), absl::StrCat("duplicate key ", Quote(name), " in ", context,
                                  " (first defined at ", FormatLocation(first->second), ")"));
      continue;
    }
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      Error(At(key),
            absl::StrCat("unknown key ", Quote(name), " in ", context, DidYouMean(name, known)));
      continue;
    }
    fields.try_emplace(name, Entry{key, it->second});
  }
  return fields;
}

const YamlReader::Entry* YamlReader::Find(const Fields& fields, absl::string_view key) {
  auto it = fields.find(std::string(key));
  return it == fields.end() ? nullptr : &it->second;
}

std::optional<std::string> YamlReader::ScalarOf(const Entry& entry, absl::string_view key) {
  if (entry.value.IsNull()) return std::string();
  if (!entry.value.IsScalar()) {
    Error(ValueAt(entry), absl::StrCat(key, " must be a scalar"));
    return std::nullopt;
  }
  const std::string& value = entry.value.Scalar();
  if (!IsValidUtf8(value)) {
    Error(ValueAt(entry), absl::StrCat(key, " is not valid UTF-8"));
    return std::nullopt;
  }
  return value;
}

std::string YamlReader::Optional(const Fields& fields, absl::string_view key) {
  const Entry* entry = Find(fields, key);
  if (entry == nullptr) return "";
  return ScalarOf(*entry, key).value_or("");
}

std::optional<std::string> YamlReader::Required(const Fields& fields, absl::string_view key,
                                                const YAML::Node& map, absl::string_view context) {
  const Entry* entry = Find(fields, key);
  if (entry == nullptr) {
    Error(At(map), absl::StrCat(context, ": missing required key ", Quote(key)));
    return std::nullopt;
  }
  std::optional<std::string> value = ScalarOf(*entry, key);
  if (value.has_value() && value->empty()) {
    Error(ValueAt(*entry), absl::StrCat(key, " must not be empty"));
    return std::nullopt;
  }
  return value;
}

std::vector<std::string> YamlReader::StringList(const Entry& entry, absl::string_view key,
                                                absl::string_view context) {
  std::vector<std::string> names;
  if (entry.value.IsNull()) return names;
  const std::string shape = absl::StrCat(key, " must be a sequence of strings");
  if (!entry.value.IsSequence()) {
    Error(ValueAt(entry), shape);
    return names;
  }
  absl::flat_hash_map<std::string, SourceLocation> seen;
  for (YAML::const_iterator it = entry.value.begin(); it != entry.value.end(); ++it) {
    const YAML::Node& item = *it;
    const SourceLocation at = item.IsNull() ? At(entry.value) : At(item);
    if (!item.IsScalar()) {
      Error(at, shape);
      continue;
    }
    const std::string& name = item.Scalar();
    if (name.empty()) {
      Error(at, absl::StrCat(key, " items must not be empty"));
      continue;
    }
    if (!IsValidUtf8(name)) {
      Error(at, absl::StrCat(key, " items must be valid UTF-8"));
      continue;
    }
    auto [first, inserted] = seen.try_emplace(name, at);
    if (!inserted) {
      Error(at, absl::StrCat("duplicate ", key, " ", Quote(name), " in ", context,
                             " (first listed at ", FormatLocation(first->second), ")"));
      continue;
    }
    names.push_back(name);
  }
  return names;
}

std::vector<Diagnostic> YamlReader::TakeDiagnostics() && {
  SortByLocation(diagnostics_);
  std::vector<Diagnostic> out;
  size_t errors = 0;
  size_t warnings = 0;
  for (Diagnostic& d : diagnostics_) {
    size_t& count = d.severity == Severity::kError ? errors : warnings;
    if (++count <= kMaxReported) out.push_back(std::move(d));
  }
  if (errors > kMaxReported) {
    out.push_back(
        Diagnostic{file_,
                   {},
                   Severity::kError,
                   absl::StrCat("too many errors; ", errors - kMaxReported, " more not shown")});
  }
  if (warnings > kMaxReported) {
    out.push_back(Diagnostic{
        file_,
        {},
        Severity::kWarning,
        absl::StrCat("too many warnings; ", warnings - kMaxReported, " more not shown")});
  }
  return out;
}

}  // namespace agate::engine
