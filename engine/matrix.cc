#include "engine/matrix.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <optional>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"
#include "common/duration.h"
#include "engine/yaml_source.h"

namespace agate::engine {

Matrix::Matrix(std::string file, std::string version, std::string name, std::vector<Lane> lanes,
               std::vector<Trigger> triggers)
    : file_(std::move(file)),
      version_(std::move(version)),
      name_(std::move(name)),
      lanes_(std::move(lanes)),
      triggers_(std::move(triggers)) {
  for (size_t i = 0; i < triggers_.size(); ++i) {
    const std::shared_ptr<const expr::Program>& c = triggers_[i].condition;
    if (c == nullptr || !c->RequiredActionTypes().has_value()) {
      unindexed_.push_back(static_cast<int>(i));
      continue;
    }
    for (const std::string& type : *c->RequiredActionTypes()) {
      std::vector<int>& list = by_action_type_[type];
      if (list.empty() || list.back() != static_cast<int>(i)) list.push_back(static_cast<int>(i));
    }
  }
}

const std::vector<int>& Matrix::TriggersForActionType(absl::string_view type) const {
  static const std::vector<int> kNone;
  auto it = by_action_type_.find(type);
  return it == by_action_type_.end() ? kNone : it->second;
}

int Matrix::FindLane(absl::string_view name) const {
  for (size_t i = 0; i < lanes_.size(); ++i) {
    if (lanes_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

namespace {

// A matrix is a few kilobytes; anything near this is a mistake or an attack.
constexpr size_t kMaxMatrixBytes = size_t{4} << 20;
// yaml-cpp recurses once per nesting level; a matrix needs four or five.
constexpr int kMaxNesting = 64;
// Past this many, more errors (or warnings) of a file are counted, not listed.
constexpr size_t kMaxReported = 100;

constexpr absl::string_view kTopKeys[] = {"version", "name", "lanes", "triggers"};
constexpr absl::string_view kLaneKeys[] = {
    "owner", "backup",       "fallback",        "sla",      "verdict",
    "scope", "agent_action", "operator_action", "evidence", "on_timeout"};
constexpr absl::string_view kTriggerKeys[] = {"id", "lane", "when"};

constexpr absl::string_view kLaneVerdicts = "HOLD, PARK_ITEM, SAFE_MODE, BLOCK, DENY";
constexpr absl::string_view kScopes = "item, workflow, credential";
constexpr absl::string_view kTimeoutBehaviors =
    "notify_backup, route_to_fallback, pause_workflow, disable_credential, expire";

std::string Quote(absl::string_view s) { return absl::StrCat("'", s, "'"); }

std::string FormatLocation(SourceLocation l) { return absl::StrCat(l.line, ":", l.column); }

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

// DidYouMean returns " (did you mean 'x'?)" for the candidate closest to word, if one is close.
template <typename Candidates>
std::string DidYouMean(absl::string_view word, const Candidates& candidates) {
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

bool IsValidLaneName(absl::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

Scope DefaultScope(Verdict verdict) {
  switch (verdict) {
    case v1::VERDICT_SAFE_MODE:
      return v1::SCOPE_WORKFLOW;
    case v1::VERDICT_DENY:
      return v1::SCOPE_CREDENTIAL;
    case v1::VERDICT_HOLD:
    case v1::VERDICT_PARK_ITEM:
    case v1::VERDICT_BLOCK:
      return v1::SCOPE_ITEM;
    default:
      return v1::SCOPE_UNSPECIFIED;
  }
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

// One key of a YAML mapping and its value.
struct Entry {
  YAML::Node key;
  YAML::Node value;
};

// The known keys of a mapping, first occurrence of each.
using Fields = absl::flat_hash_map<std::string, Entry>;

// Builds a Matrix from YAML text, collecting every error and warning on the way.
class MatrixParser {
 public:
  MatrixParser(absl::string_view yaml, absl::string_view file) : source_(yaml), file_(file) {}

  // Parse returns the matrix, or null when there is any error. Never throws.
  std::shared_ptr<const Matrix> Parse() {
    if (source_.text().size() > kMaxMatrixBytes) {
      Error({},
            absl::StrCat("the matrix is larger than 4 MiB (", source_.text().size(), " bytes)"));
      return nullptr;
    }
    if (std::optional<SourceLocation> at = FindDeepNesting(source_.text(), kMaxNesting)) {
      Error(*at, absl::StrCat("the document is nested deeper than ", kMaxNesting, " levels"));
      return nullptr;
    }
    try {
      const std::string text(source_.text());
      if (!CheckDocuments(text)) return nullptr;
      return Build(YAML::Load(text));
    } catch (const YAML::Exception& e) {
      Error(At(e.mark), absl::StrCat("invalid YAML: ", e.msg));
    } catch (const std::exception& e) {
      Error({}, absl::StrCat("cannot parse the matrix: ", e.what()));
    }
    return nullptr;
  }

  // Diagnostics returns what Parse found, sorted by position, each kind capped at kMaxReported.
  std::vector<Diagnostic> Diagnostics() && {
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

 private:
  void Error(SourceLocation at, std::string message) {
    diagnostics_.push_back(Diagnostic{file_, at, Severity::kError, std::move(message)});
    has_errors_ = true;
  }
  void Warning(SourceLocation at, std::string message) {
    diagnostics_.push_back(Diagnostic{file_, at, Severity::kWarning, std::move(message)});
  }

  static SourceLocation At(const YAML::Mark& mark) {
    if (mark.line < 0 || mark.column < 0) return {};
    return SourceLocation{mark.line + 1, mark.column + 1};
  }
  static SourceLocation At(const YAML::Node& node) { return At(node.Mark()); }
  // ValueAt is where to report a problem with an entry's value. An empty value has no position
  // of its own (yaml-cpp marks the next token), so it is reported at its key.
  static SourceLocation ValueAt(const Entry& entry) {
    return entry.value.IsNull() ? At(entry.key) : At(entry.value);
  }

  // ReadFields reports non-string, duplicate and unknown keys of `map` (a mapping) and returns
  // the known ones.
  Fields ReadFields(const YAML::Node& map, absl::Span<const absl::string_view> known,
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

  static const Entry* Find(const Fields& fields, absl::string_view key) {
    auto it = fields.find(std::string(key));
    return it == fields.end() ? nullptr : &it->second;
  }

  // ScalarOf returns the entry's value as a string ("" for an empty value), or reports
  // "<key> must be a scalar".
  std::optional<std::string> ScalarOf(const Entry& entry, absl::string_view key) {
    if (entry.value.IsNull()) return std::string();
    if (!entry.value.IsScalar()) {
      Error(ValueAt(entry), absl::StrCat(key, " must be a scalar"));
      return std::nullopt;
    }
    return entry.value.Scalar();
  }

  // Optional returns key's scalar value, "" if absent or invalid.
  std::string Optional(const Fields& fields, absl::string_view key) {
    const Entry* entry = Find(fields, key);
    if (entry == nullptr) return "";
    return ScalarOf(*entry, key).value_or("");
  }

  // Required returns key's non-empty scalar value, or reports it missing (at `map`) or empty.
  std::optional<std::string> Required(const Fields& fields, absl::string_view key,
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

  // CheckDocuments walks the YAML stream's documents with yaml-cpp's event parser (which does
  // not expand aliases) and reports a second document with content. yaml-cpp 0.7 can stop
  // making progress (a stray ',' at the top level reads as an endless stream of empty documents:
  // YAML::LoadAll never returns), so a document that starts where the previous one did is an
  // error. Returns false if the text cannot be parsed. Throws YAML::Exception.
  bool CheckDocuments(const std::string& text) {
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentEvents events;
    std::optional<YAML::Mark> previous;
    // Each document but a stuck one consumes input; the cap is a second line of defence.
    constexpr int kMaxDocuments = 1 << 20;
    for (int document = 1; document <= kMaxDocuments && parser.HandleNextDocument(events);
         ++document) {
      if (previous.has_value() && previous->pos == events.start.pos) {
        const std::optional<size_t> at =
            source_.OffsetOfMark(events.start.line, events.start.column);
        const std::string what =
            at.has_value() && *at < text.size() ? Quote(text.substr(*at, 1)) : "text";
        Error(At(events.start), absl::StrCat("invalid YAML: unexpected ", what));
        return false;
      }
      if (document >= 2 && events.has_content) {
        Error(At(events.start), "a matrix file holds one YAML document; this is a second one");
        return true;
      }
      previous = events.start;
    }
    return true;
  }

  std::shared_ptr<const Matrix> Build(const YAML::Node& root) {
    if (root.IsNull()) {
      Error({1, 1}, "the matrix is empty; expected a mapping with version, lanes and triggers");
      return nullptr;
    }
    if (!root.IsMap()) {
      Error(At(root), "the matrix must be a mapping with version, lanes and triggers");
      return nullptr;
    }
    const absl::string_view context = "the matrix";
    Fields fields = ReadFields(root, kTopKeys, context);
    std::string version = Required(fields, "version", root, context).value_or("");
    std::string name = Optional(fields, "name");

    if (const Entry* lanes = Find(fields, "lanes"); lanes == nullptr) {
      Error(At(root), absl::StrCat(context, ": missing required key 'lanes'"));
    } else if (!lanes->value.IsMap()) {
      Error(ValueAt(*lanes), "lanes must be a mapping");
    } else if (lanes->value.size() == 0) {
      Error(ValueAt(*lanes), "lanes must define at least one lane");
    } else {
      ReadLanes(lanes->value);
    }

    if (const Entry* triggers = Find(fields, "triggers"); triggers == nullptr) {
      Error(At(root), absl::StrCat(context, ": missing required key 'triggers'"));
    } else if (!triggers->value.IsSequence()) {
      Error(ValueAt(*triggers), "triggers must be a sequence");
    } else if (triggers->value.size() == 0) {
      Error(ValueAt(*triggers), "triggers must list at least one trigger");
    } else {
      ReadTriggers(triggers->value);
    }

    if (has_errors_) return nullptr;
    auto matrix =
        std::make_shared<const Matrix>(std::string(file_), std::move(version), std::move(name),
                                       std::move(lanes_), std::move(triggers_));
    for (Diagnostic& warning : LintMatrix(*matrix)) diagnostics_.push_back(std::move(warning));
    return matrix;
  }

  void ReadLanes(const YAML::Node& lanes) {
    absl::flat_hash_map<std::string, SourceLocation> seen;
    for (YAML::const_iterator it = lanes.begin(); it != lanes.end(); ++it) {
      const Entry entry{it->first, it->second};
      if (!entry.key.IsScalar()) {
        Error(At(entry.key), "lane names must be strings");
        continue;
      }
      const std::string& name = entry.key.Scalar();
      auto [first, inserted] = seen.try_emplace(name, At(entry.key));
      if (!inserted) {
        Error(At(entry.key), absl::StrCat("duplicate lane ", Quote(name), " (first defined at ",
                                          FormatLocation(first->second), ")"));
        continue;
      }
      if (!IsValidLaneName(name)) {
        Error(At(entry.key), absl::StrCat("invalid lane name ", Quote(name),
                                          ": use lowercase letters, digits, '_' and '-'"));
      }
      lane_names_.push_back(name);
      lanes_.push_back(ReadLane(name, entry));
    }
  }

  Lane ReadLane(const std::string& name, const Entry& entry) {
    Lane lane;
    lane.name = name;
    lane.location = At(entry.key);
    const std::string context = absl::StrCat("lane ", Quote(name));
    const YAML::Node& map = entry.value;
    if (!map.IsMap()) {
      Error(ValueAt(entry),
            absl::StrCat(context, " must be a mapping with owner, sla, verdict and more"));
      return lane;
    }
    Fields fields = ReadFields(map, kLaneKeys, context);
    lane.owner = Required(fields, "owner", map, context).value_or("");
    lane.backup = Optional(fields, "backup");
    lane.fallback = Optional(fields, "fallback");
    lane.agent_action = Optional(fields, "agent_action");
    lane.operator_action = Optional(fields, "operator_action");

    if (std::optional<std::string> sla = Required(fields, "sla", map, context)) {
      absl::StatusOr<absl::Duration> duration = ParseDuration(*sla);
      if (duration.ok()) {
        lane.sla = *duration;
      } else {
        Error(ValueAt(*Find(fields, "sla")), std::string(duration.status().message()));
      }
    }

    if (std::optional<std::string> verdict = Required(fields, "verdict", map, context)) {
      const SourceLocation at = ValueAt(*Find(fields, "verdict"));
      std::optional<Verdict> parsed = ParseVerdict(*verdict);
      if (!parsed.has_value()) {
        Error(at, absl::StrCat("unknown verdict ", Quote(*verdict), "; one of ", kLaneVerdicts));
      } else if (*parsed == v1::VERDICT_ALLOW) {
        Error(at, absl::StrCat("a lane cannot ALLOW: it escalates; its verdict is one of ",
                               kLaneVerdicts));
      } else {
        lane.verdict = *parsed;
      }
    }

    lane.scope = DefaultScope(lane.verdict);
    if (const Entry* scope = Find(fields, "scope")) {
      std::optional<std::string> text = ScalarOf(*scope, "scope");
      if (text.has_value() && !text->empty()) {
        if (std::optional<Scope> parsed = ParseScope(*text)) {
          lane.scope = *parsed;
        } else {
          Error(ValueAt(*scope),
                absl::StrCat("unknown scope ", Quote(*text), "; one of ", kScopes));
        }
      }
    }

    if (const Entry* evidence = Find(fields, "evidence")) {
      lane.evidence = ReadEvidence(*evidence, context);
    }

    if (const Entry* on_timeout = Find(fields, "on_timeout")) {
      std::optional<std::string> text = ScalarOf(*on_timeout, "on_timeout");
      if (text.has_value() && !text->empty()) {
        const SourceLocation at = ValueAt(*on_timeout);
        std::optional<TimeoutBehavior> parsed = ParseTimeoutBehavior(*text);
        if (!parsed.has_value()) {
          Error(at,
                absl::StrCat("unknown on_timeout ", Quote(*text), "; one of ", kTimeoutBehaviors));
        } else {
          lane.on_timeout = *parsed;
          if (*parsed == v1::TIMEOUT_BEHAVIOR_ROUTE_TO_FALLBACK && lane.fallback.empty()) {
            Error(at, absl::StrCat("on_timeout route_to_fallback needs a fallback in ", context));
          }
          if (*parsed == v1::TIMEOUT_BEHAVIOR_NOTIFY_BACKUP && lane.backup.empty()) {
            Error(at, absl::StrCat("on_timeout notify_backup needs a backup in ", context));
          }
        }
      }
    }
    return lane;
  }

  std::vector<std::string> ReadEvidence(const Entry& entry, absl::string_view context) {
    std::vector<std::string> names;
    if (entry.value.IsNull()) return names;
    if (!entry.value.IsSequence()) {
      Error(ValueAt(entry), "evidence must be a sequence of strings");
      return names;
    }
    absl::flat_hash_map<std::string, SourceLocation> seen;
    for (YAML::const_iterator it = entry.value.begin(); it != entry.value.end(); ++it) {
      const YAML::Node& item = *it;
      const SourceLocation at = item.IsNull() ? At(entry.value) : At(item);
      if (!item.IsScalar()) {
        Error(at, "evidence must be a sequence of strings");
        continue;
      }
      const std::string& name = item.Scalar();
      if (name.empty()) {
        Error(at, "evidence names must not be empty");
        continue;
      }
      auto [first, inserted] = seen.try_emplace(name, at);
      if (!inserted) {
        Error(at, absl::StrCat("duplicate evidence ", Quote(name), " in ", context,
                               " (first listed at ", FormatLocation(first->second), ")"));
        continue;
      }
      names.push_back(name);
    }
    return names;
  }

  // TriggerContext names a trigger in messages: by its id when it has a usable one.
  static std::string TriggerContext(const YAML::Node& map, size_t number) {
    for (YAML::const_iterator it = map.begin(); it != map.end(); ++it) {
      if (it->first.IsScalar() && it->first.Scalar() == "id" && it->second.IsScalar() &&
          !it->second.Scalar().empty()) {
        return absl::StrCat("trigger ", Quote(it->second.Scalar()));
      }
    }
    return absl::StrCat("trigger #", number);
  }

  void ReadTriggers(const YAML::Node& triggers) {
    absl::flat_hash_map<std::string, SourceLocation> ids;
    size_t number = 0;
    for (YAML::const_iterator it = triggers.begin(); it != triggers.end(); ++it) {
      ++number;
      const YAML::Node& map = *it;
      if (!map.IsMap()) {
        Error(map.IsNull() ? At(triggers) : At(map),
              absl::StrCat("trigger #", number, " must be a mapping with id, lane and when"));
        continue;
      }
      const std::string context = TriggerContext(map, number);
      Fields fields = ReadFields(map, kTriggerKeys, context);
      Trigger trigger;
      trigger.location = At(map);

      if (std::optional<std::string> id = Required(fields, "id", map, context)) {
        const SourceLocation at = ValueAt(*Find(fields, "id"));
        auto [first, inserted] = ids.try_emplace(*id, at);
        if (!inserted) {
          Error(at, absl::StrCat("duplicate trigger id ", Quote(*id), " (first defined at ",
                                 FormatLocation(first->second), ")"));
        }
        trigger.id = *id;
      }

      if (std::optional<std::string> lane = Required(fields, "lane", map, context)) {
        auto found = std::find(lane_names_.begin(), lane_names_.end(), *lane);
        if (found != lane_names_.end()) {
          trigger.lane = static_cast<int>(found - lane_names_.begin());
        } else if (!lane_names_.empty()) {
          Error(ValueAt(*Find(fields, "lane")),
                absl::StrCat("unknown lane ", Quote(*lane), " in ", context,
                             DidYouMean(*lane, lane_names_), "; lanes are ", LaneList()));
        }
      }

      if (Required(fields, "when", map, context).has_value()) {
        CompileCondition(*Find(fields, "when"), trigger);
      }
      triggers_.push_back(std::move(trigger));
    }
  }

  std::string LaneList() const {
    constexpr size_t kMaxListed = 10;
    if (lane_names_.size() <= kMaxListed) return absl::StrJoin(lane_names_, ", ");
    return absl::StrCat(absl::StrJoin(lane_names_.begin(), lane_names_.begin() + kMaxListed, ", "),
                        ", ... (", lane_names_.size(), " in all)");
  }

  // CompileCondition compiles the `when` scalar and reports the compiler's errors and warnings
  // at their positions inside the scalar in the file.
  void CompileCondition(const Entry& when, Trigger& trigger) {
    const std::string& text = when.value.Scalar();
    expr::CompileResult result = expr::Compile(text);

    const SourceLocation start = At(when.value);
    std::vector<size_t> offsets;
    if (std::optional<size_t> mark =
            source_.OffsetOfMark(when.value.Mark().line, when.value.Mark().column)) {
      offsets = source_.MapScalar(*mark, text);
    }
    auto at = [&](int offset) -> SourceLocation {
      if (offsets.empty()) return start;
      const size_t i = static_cast<size_t>(std::max(offset, 0));
      if (i < offsets.size()) return source_.LocationOf(offsets[i]);
      // The end of the text: just after its last non-blank byte.
      size_t last = offsets.size() - 1;
      while (last > 0 && absl::ascii_isspace(static_cast<unsigned char>(text[last]))) --last;
      SourceLocation after = source_.LocationOf(offsets[last]);
      ++after.column;
      return after;
    };
    for (const expr::Issue& issue : result.errors) Error(at(issue.offset), issue.message);
    for (const expr::Issue& issue : result.warnings) Warning(at(issue.offset), issue.message);
    trigger.when_location = at(0);
    trigger.condition = std::move(result.program);
  }

  YamlSource source_;
  std::string file_;
  std::vector<Diagnostic> diagnostics_;
  bool has_errors_ = false;
  std::vector<std::string> lane_names_;  // every lane read, valid or not, in file order
  std::vector<Lane> lanes_;              // parallel to lane_names_
  std::vector<Trigger> triggers_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<const Matrix>> ParseMatrix(absl::string_view yaml,
                                                          absl::string_view file_name,
                                                          std::vector<Diagnostic>* diagnostics) {
  MatrixParser parser(yaml, file_name);
  std::shared_ptr<const Matrix> matrix = parser.Parse();
  std::vector<Diagnostic> found = std::move(parser).Diagnostics();
  absl::Status status = ErrorsToStatus(found);
  if (diagnostics != nullptr) {
    diagnostics->insert(diagnostics->end(), std::make_move_iterator(found.begin()),
                        std::make_move_iterator(found.end()));
  }
  if (!status.ok()) return status;
  if (matrix == nullptr) return absl::InternalError("matrix parser failed without an error");
  return matrix;
}

absl::StatusOr<std::shared_ptr<const Matrix>> LoadMatrixFile(const std::string& path,
                                                             std::vector<Diagnostic>* diagnostics) {
  auto fail = [&](absl::StatusCode code, std::string message) -> absl::Status {
    Diagnostic d{path, {}, Severity::kError, std::move(message)};
    absl::Status status(code, d.ToString());
    if (diagnostics != nullptr) diagnostics->push_back(std::move(d));
    return status;
  };
  auto fail_errno = [&](int error) {
    const absl::Status status = absl::ErrnoToStatus(error, "cannot read");
    return fail(status.code(), std::string(status.message()));
  };
  auto too_large = [&](absl::string_view size) {
    return fail(absl::StatusCode::kInvalidArgument,
                absl::StrCat("the matrix is larger than 4 MiB", size));
  };

  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail_errno(errno);
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};

  struct stat st;
  if (::fstat(fd, &st) != 0) return fail_errno(errno);
  if (S_ISDIR(st.st_mode)) return fail_errno(EISDIR);
  if (st.st_size > static_cast<off_t>(kMaxMatrixBytes)) {
    return too_large(absl::StrCat(" (", st.st_size, " bytes)"));
  }

  // Read at most one byte past the limit: files that lie about their size (pipes, /proc) too.
  std::string text;
  text.resize(kMaxMatrixBytes + 1);
  size_t size = 0;
  while (size < text.size()) {
    const ssize_t n = ::read(fd, text.data() + size, text.size() - size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno(errno);
    }
    if (n == 0) break;
    size += static_cast<size_t>(n);
  }
  if (size > kMaxMatrixBytes) return too_large("");
  text.resize(size);
  return ParseMatrix(text, path, diagnostics);
}

}  // namespace agate::engine
