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
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"
#include "common/duration.h"
#include "engine/fingerprint.h"
#include "engine/redaction.h"
#include "engine/yaml_reader.h"

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

constexpr absl::string_view kTopKeys[] = {"version", "name", "lanes", "triggers", "capture"};
constexpr absl::string_view kCaptureKeys[] = {"redact"};
constexpr absl::string_view kLaneKeys[] = {
    "owner",        "backup",      "fallback",          "sla",
    "verdict",      "scope",       "agent_action",      "operator_action",
    "evidence",     "on_timeout",  "approvals",         "requester_may_approve",
    "approval_ttl", "fingerprint", "max_open_per_owner"};
// A bound this large is no bound.
constexpr int kMaxOpenPerOwner = 1'000'000;
// A quorum larger than this is a typo, not a policy.
constexpr int kMaxApprovals = 16;
constexpr absl::string_view kTriggerKeys[] = {"id", "lane", "when"};

constexpr absl::string_view kLaneVerdicts = "HOLD, PARK_ITEM, SAFE_MODE, BLOCK, DENY";
constexpr absl::string_view kScopes = "item, workflow, credential";
constexpr absl::string_view kTimeoutBehaviors =
    "notify_backup, route_to_fallback, pause_workflow, disable_credential, expire";

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

using Entry = YamlReader::Entry;
using Fields = YamlReader::Fields;

// Builds a Matrix from YAML text, collecting every error and warning on the way.
class MatrixParser {
 public:
  MatrixParser(absl::string_view yaml, absl::string_view file)
      : reader_(yaml, file, "the matrix", kMaxMatrixBytes) {}

  // Parse returns the matrix, or null when there is any error. Never throws.
  std::shared_ptr<const Matrix> Parse() {
    std::optional<YAML::Node> root = reader_.Load();
    if (!root.has_value()) return nullptr;
    try {
      return Build(*root);
    } catch (const std::exception& e) {
      reader_.Error({}, absl::StrCat("cannot parse the matrix: ", e.what()));
    }
    return nullptr;
  }

  // Diagnostics returns what Parse found, sorted by position, each kind capped.
  std::vector<Diagnostic> Diagnostics() && { return std::move(reader_).TakeDiagnostics(); }

 private:
  void Error(SourceLocation at, std::string message) { reader_.Error(at, std::move(message)); }
  void Warning(SourceLocation at, std::string message) { reader_.Warning(at, std::move(message)); }
  static SourceLocation At(const YAML::Node& node) { return YamlReader::At(node); }
  static SourceLocation ValueAt(const Entry& entry) { return YamlReader::ValueAt(entry); }
  static const Entry* Find(const Fields& fields, absl::string_view key) {
    return YamlReader::Find(fields, key);
  }
  // WholeNumber reads entry as a whole number from 1 to max; nullopt (with an error if it is not
  // one) otherwise.
  std::optional<int> WholeNumber(const Entry& entry, absl::string_view key, int max) {
    std::optional<std::string> text = ScalarOf(entry, key);
    int n = 0;
    if (!text.has_value()) return std::nullopt;
    if (!absl::SimpleAtoi(*text, &n) || n < 1 || n > max) {
      Error(ValueAt(entry),
            absl::StrCat(key, " must be a whole number from 1 to ", max, ", got ", Quote(*text)));
      return std::nullopt;
    }
    return n;
  }

  std::optional<std::string> ScalarOf(const Entry& entry, absl::string_view key) {
    return reader_.ScalarOf(entry, key);
  }
  std::string Optional(const Fields& fields, absl::string_view key) {
    return reader_.Optional(fields, key);
  }
  std::optional<std::string> Required(const Fields& fields, absl::string_view key,
                                      const YAML::Node& map, absl::string_view context) {
    return reader_.Required(fields, key, map, context);
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
    Fields fields = reader_.ReadFields(root, kTopKeys, context);
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

    std::vector<std::string> redact;
    if (const Entry* capture = Find(fields, "capture")) redact = ReadCapture(*capture);

    if (reader_.has_errors()) return nullptr;
    auto built = std::make_shared<Matrix>(reader_.file(), std::move(version), std::move(name),
                                          std::move(lanes_), std::move(triggers_));
    built->set_capture_redact(std::move(redact));
    std::shared_ptr<const Matrix> matrix = std::move(built);
    for (Diagnostic& warning : LintMatrix(*matrix)) {
      reader_.Warning(warning.location, std::move(warning.message));
    }
    return matrix;
  }

  // ReadCapture reads `capture: {redact: [FIELD, ...]}`: what a request capture leaves out.
  std::vector<std::string> ReadCapture(const Entry& capture) {
    std::vector<std::string> redact;
    if (!capture.value.IsMap()) {
      Error(ValueAt(capture), "capture must be a mapping, e.g. {redact: [evidence]}");
      return redact;
    }
    Fields fields = reader_.ReadFields(capture.value, kCaptureKeys, "capture");
    const Entry* list = Find(fields, "redact");
    if (list == nullptr) return redact;
    for (std::string& field : reader_.StringList(*list, "redact", "capture")) {
      if (absl::Status s = CheckRedactField(field); s.ok()) redact.push_back(std::move(field));
    }
    if (!list->value.IsSequence()) return redact;
    for (const YAML::Node& item : list->value) {  // each unknown field, at its own position
      if (!item.IsScalar()) continue;
      if (absl::Status s = CheckRedactField(item.Scalar()); !s.ok()) {
        Error(At(item), absl::StrCat("capture: redact: ", s.message()));
      }
    }
    return redact;
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
    Fields fields = reader_.ReadFields(map, kLaneKeys, context);
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
      lane.evidence = reader_.StringList(*evidence, "evidence", context);
    }

    if (const Entry* approvals = Find(fields, "approvals")) {
      if (std::optional<int> n = WholeNumber(*approvals, "approvals", kMaxApprovals)) {
        lane.approvals = *n;
      }
    }
    if (const Entry* may = Find(fields, "requester_may_approve")) {
      std::optional<std::string> text = ScalarOf(*may, "requester_may_approve");
      if (text.has_value() && *text != "true" && *text != "false") {
        Error(ValueAt(*may),
              absl::StrCat("requester_may_approve must be true or false, got ", Quote(*text)));
      } else if (text.has_value()) {
        lane.requester_may_approve = *text == "true";
      }
    }
    if (const Entry* bound = Find(fields, "max_open_per_owner")) {
      std::optional<int> n = WholeNumber(*bound, "max_open_per_owner", kMaxOpenPerOwner);
      if (n.has_value() && lane.backup.empty()) {
        Error(ValueAt(*bound), "max_open_per_owner: the lane has no backup to route new cases to");
      } else if (n.has_value()) {
        lane.max_open_per_owner = *n;
      }
    }
    if (const Entry* fingerprint = Find(fields, "fingerprint")) {
      for (std::string& field : reader_.StringList(*fingerprint, "fingerprint", context)) {
        if (absl::Status s = CheckFingerprintField(field); !s.ok()) {
          Error(ValueAt(*fingerprint), absl::StrCat("fingerprint: ", s.message()));
        } else {
          lane.fingerprint.push_back(std::move(field));
        }
      }
    }
    if (const Entry* ttl = Find(fields, "approval_ttl")) {
      if (std::optional<std::string> text = ScalarOf(*ttl, "approval_ttl")) {
        absl::StatusOr<absl::Duration> duration = ParseDuration(*text);
        if (duration.ok()) {
          lane.approval_ttl = *duration;
        } else {
          Error(ValueAt(*ttl), absl::StrCat("approval_ttl: ", duration.status().message()));
        }
      }
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
      Fields fields = reader_.ReadFields(map, kTriggerKeys, context);
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
    const YamlSource& source = reader_.source();
    if (std::optional<size_t> mark =
            source.OffsetOfMark(when.value.Mark().line, when.value.Mark().column)) {
      offsets = source.MapScalar(*mark, text);
    }
    auto at = [&](int offset) -> SourceLocation {
      if (offsets.empty()) return start;
      const size_t i = static_cast<size_t>(std::max(offset, 0));
      if (i < offsets.size()) return source.LocationOf(offsets[i]);
      // The end of the text: just after its last non-blank byte.
      size_t last = offsets.size() - 1;
      while (last > 0 && absl::ascii_isspace(static_cast<unsigned char>(text[last]))) --last;
      SourceLocation after = source.LocationOf(offsets[last]);
      ++after.column;
      return after;
    };
    for (const expr::Issue& issue : result.errors) Error(at(issue.offset), issue.message);
    for (const expr::Issue& issue : result.warnings) Warning(at(issue.offset), issue.message);
    trigger.when_location = at(0);
    trigger.condition = std::move(result.program);
  }

  YamlReader reader_;
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
  absl::StatusOr<std::string> text = ReadYamlFile(path, kMaxMatrixBytes, "the matrix", diagnostics);
  if (!text.ok()) return text.status();
  return ParseMatrix(*text, path, diagnostics);
}

}  // namespace agate::engine
