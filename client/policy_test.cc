#include "client/policy_test.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "client/offline_eval.h"
#include "common/clock.h"
#include "common/duration.h"
#include "common/json_string.h"
#include "common/utf8.h"
#include "engine/verdict.h"
#include "engine/yaml_reader.h"

namespace agate::client {
namespace {

using engine::Diagnostic;
using engine::SourceLocation;
using engine::YamlReader;
using Entry = YamlReader::Entry;
using Fields = YamlReader::Fields;

// A test file holds tens of thousands of table rows at most.
constexpr size_t kMaxTestFileBytes = size_t{64} << 20;

constexpr absl::string_view kFileKeys[] = {"matrix", "defaults", "tests"};
constexpr absl::string_view kTestKeys[] = {"name", "request", "expect", "base", "rows", "steps"};
constexpr absl::string_view kRowKeys[] = {"name", "request", "expect"};
constexpr absl::string_view kStepKeys[] = {"name",   "at",          "request",
                                           "expect", "acknowledge", "redeem"};
constexpr absl::string_view kAckKeys[] = {"case", "decision", "principal", "comment"};
constexpr absl::string_view kExpectKeys[] = {"verdict", "lane", "fired", "missing_evidence",
                                             "error"};
constexpr char kVerdictNames[] = "ALLOW, PARK_ITEM, HOLD, SAFE_MODE, BLOCK, DENY";

// --- YAML requests to the eval input format ---------------------------------------------------

// A plain (unquoted) scalar that reads as a JSON number.
bool IsJsonNumber(absl::string_view s) {
  size_t i = 0;
  auto digits = [&] {
    const size_t start = i;
    while (i < s.size() && absl::ascii_isdigit(static_cast<unsigned char>(s[i]))) ++i;
    return i > start;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

void AppendScalarJson(const YAML::Node& node, std::string* out) {
  const std::string& s = node.Scalar();
  // yaml-cpp tags a plain scalar "?" and a quoted one "!": only a plain one can be a number,
  // a boolean or null, as in YAML's core schema.
  if (node.Tag() == "?") {
    if (s == "true" || s == "false" || IsJsonNumber(s)) {
      out->append(s);
      return;
    }
    if (s == "null" || s == "~" || s.empty()) {
      out->append("null");
      return;
    }
  }
  AppendJsonString(s, out);
}

// A request in a test file is small; aliases can make a YAML tree cyclic or exponentially large.
constexpr int kMaxRequestDepth = 32;
constexpr size_t kMaxRequestJsonBytes = size_t{1} << 20;

// AppendMergedJson appends the JSON of layers merged, lowest priority first: mappings merge key
// by key (recursively); anything else replaces what is below it. false (out unfinished) when the
// result nests deeper than kMaxRequestDepth or grows past kMaxRequestJsonBytes.
bool AppendMergedJson(const std::vector<YAML::Node>& layers, std::string* out, int depth = 0) {
  if (depth > kMaxRequestDepth || out->size() > kMaxRequestJsonBytes) return false;
  const YAML::Node& top = layers.back();
  if (!top.IsMap()) {
    if (top.IsSequence()) {
      out->push_back('[');
      bool first = true;
      for (const YAML::Node& item : top) {
        if (!first) out->push_back(',');
        first = false;
        if (!AppendMergedJson({item}, out, depth + 1)) return false;
      }
      out->push_back(']');
    } else if (top.IsScalar()) {
      AppendScalarJson(top, out);
    } else {
      out->append("null");
    }
    return true;
  }
  // The mappings on top of the stack, lowest first.
  size_t first_map = layers.size() - 1;
  while (first_map > 0 && layers[first_map - 1].IsMap()) --first_map;
  std::vector<std::string> keys;
  absl::flat_hash_set<std::string> seen;
  for (size_t l = first_map; l < layers.size(); ++l) {
    for (const auto& item : layers[l]) {
      const std::string key = item.first.Scalar();
      if (seen.insert(key).second) keys.push_back(key);
    }
  }
  out->push_back('{');
  bool first = true;
  for (const std::string& key : keys) {
    std::vector<YAML::Node> below;
    for (size_t l = first_map; l < layers.size(); ++l) {
      for (const auto& item : layers[l]) {
        if (item.first.Scalar() == key) below.push_back(item.second);
      }
    }
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(key, out);
    out->push_back(':');
    if (!AppendMergedJson(below, out, depth + 1)) return false;
  }
  out->push_back('}');
  return true;
}

// --- Parsing ----------------------------------------------------------------------------------

std::string Lower(absl::string_view s) { return absl::AsciiStrToLower(s); }

std::optional<absl::StatusCode> ParseStatusCode(absl::string_view name) {
  for (int c = 0; c <= 16; ++c) {
    const auto code = static_cast<absl::StatusCode>(c);
    if (absl::EqualsIgnoreCase(absl::StatusCodeToString(code), name)) return code;
  }
  return std::nullopt;
}

using MatrixCache = std::map<std::string, absl::StatusOr<std::shared_ptr<const engine::Matrix>>>;

class TestFileParser {
 public:
  TestFileParser(absl::string_view text, const std::string& path, MatrixCache* matrices,
                 std::vector<Diagnostic>* matrix_diagnostics)
      : reader_(text, path, "the test file", kMaxTestFileBytes),
        matrices_(matrices),
        matrix_diagnostics_(matrix_diagnostics) {
    file_.path = path;
  }

  // Parse fills the file; false when there is any error. Never throws.
  bool Parse() {
    std::optional<YAML::Node> root = reader_.Load();
    if (!root.has_value()) return false;
    try {
      Build(*root);
    } catch (const std::exception& e) {
      reader_.Error({}, absl::StrCat("cannot parse the test file: ", e.what()));
    }
    return !reader_.has_errors();
  }

  PolicyTestFile TakeFile() && { return std::move(file_); }
  std::vector<Diagnostic> TakeDiagnostics() && { return std::move(reader_).TakeDiagnostics(); }

 private:
  static SourceLocation At(const YAML::Node& node) { return YamlReader::At(node); }
  void Error(SourceLocation at, std::string message) { reader_.Error(at, std::move(message)); }

  void Build(const YAML::Node& root) {
    if (!root.IsMap()) {
      Error(At(root), "a test file is a mapping with matrix and tests");
      return;
    }
    const Fields fields = reader_.ReadFields(root, kFileKeys, "the test file");
    if (std::optional<std::string> m = reader_.Required(fields, "matrix", root, "the test file")) {
      LoadMatrix(*m, *YamlReader::Find(fields, "matrix"));
    }
    if (const Entry* d = YamlReader::Find(fields, "defaults")) {
      if (!d->value.IsMap()) {
        Error(YamlReader::ValueAt(*d), "defaults must be a mapping (a request's fields)");
      } else {
        defaults_ = d->value;
      }
    }
    const Entry* tests = YamlReader::Find(fields, "tests");
    if (tests == nullptr) {
      Error(At(root), "the test file has no tests");
      return;
    }
    if (!tests->value.IsSequence() || tests->value.size() == 0) {
      Error(YamlReader::ValueAt(*tests), "tests must be a non-empty sequence of tests");
      return;
    }
    for (const YAML::Node& test : tests->value) ReadTest(test);
  }

  void LoadMatrix(const std::string& name, const Entry& entry) {
    const std::filesystem::path dir = std::filesystem::path(file_.path).parent_path();
    file_.matrix_path = (dir / name).lexically_normal().string();
    auto it = matrices_->find(file_.matrix_path);
    if (it == matrices_->end()) {
      std::vector<Diagnostic> diagnostics;
      it = matrices_
               ->emplace(file_.matrix_path, engine::LoadMatrixFile(file_.matrix_path, &diagnostics))
               .first;
      for (Diagnostic& d : diagnostics) {
        if (d.severity == engine::Severity::kError) matrix_diagnostics_->push_back(std::move(d));
      }
    }
    if (!it->second.ok()) {
      const absl::Status& s = it->second.status();
      Error(YamlReader::ValueAt(entry),
            absl::StrCat("matrix ", engine::Quote(file_.matrix_path), " cannot be loaded: ",
                         absl::IsNotFound(s) ? "no such file" : "it has errors (above)"));
      return;
    }
    file_.matrix = *it->second;
  }

  void ReadTest(const YAML::Node& node) {
    if (!node.IsMap()) {
      Error(At(node), "a test must be a mapping with name and request, rows or steps");
      return;
    }
    const Fields fields = reader_.ReadFields(node, kTestKeys, "a test");
    std::optional<std::string> name = reader_.Required(fields, "name", node, "a test");
    if (!name.has_value()) return;
    const Entry* request = YamlReader::Find(fields, "request");
    const Entry* rows = YamlReader::Find(fields, "rows");
    const Entry* steps = YamlReader::Find(fields, "steps");
    const Entry* base = YamlReader::Find(fields, "base");
    const Entry* expect = YamlReader::Find(fields, "expect");
    if ((request != nullptr) + (rows != nullptr) + (steps != nullptr) != 1) {
      Error(At(node), absl::StrCat("test ", engine::Quote(*name),
                                   " needs exactly one of request, rows (with base) or steps"));
      return;
    }
    if (base != nullptr && rows == nullptr) {
      Error(At(base->key), "base is for tables: it needs rows");
      return;
    }
    if (expect != nullptr && steps != nullptr) {
      Error(At(expect->key), "a sequence's expectations go in its steps");
      return;
    }
    if (request != nullptr) {
      PolicyTest test{.name = *name, .line = At(node).line};
      PolicyTestStep step{.line = test.line};
      if (!ReadRequest({request->value}, *name, &step.request)) return;
      if (expect != nullptr) ReadExpect(expect->value, &step.expect);
      test.steps.push_back(std::move(step));
      AddTest(std::move(test), At(node));
    } else if (rows != nullptr) {
      ReadTable(*name, base, expect, *rows);
    } else {
      ReadSequence(*name, node, *steps);
    }
  }

  void ReadTable(const std::string& name, const Entry* base, const Entry* expect,
                 const Entry& rows) {
    if (!rows.value.IsSequence() || rows.value.size() == 0) {
      Error(YamlReader::ValueAt(rows), "rows must be a non-empty sequence of rows");
      return;
    }
    Expectation table_expect;
    if (expect != nullptr) ReadExpect(expect->value, &table_expect);
    int number = 0;
    for (const YAML::Node& row : rows.value) {
      ++number;
      if (!row.IsMap()) {
        Error(At(row), "a row must be a mapping with name, request and expect");
        continue;
      }
      const Fields fields = reader_.ReadFields(row, kRowKeys, "a row");
      std::string row_name = reader_.Optional(fields, "name");
      if (row_name.empty()) row_name = absl::StrCat("row ", number);
      PolicyTest test{.name = absl::StrCat(name, "/", row_name), .line = At(row).line};
      PolicyTestStep step{.line = test.line, .expect = table_expect};
      std::vector<YAML::Node> layers;
      if (base != nullptr) layers.push_back(base->value);
      if (const Entry* r = YamlReader::Find(fields, "request")) layers.push_back(r->value);
      if (layers.empty()) {
        Error(At(row), absl::StrCat("row ", engine::Quote(row_name), " has no request and the ",
                                    "table no base"));
        continue;
      }
      if (!ReadRequest(layers, test.name, &step.request)) continue;
      if (const Entry* e = YamlReader::Find(fields, "expect")) {
        step.expect = Expectation();  // a row's expect replaces the table's
        ReadExpect(e->value, &step.expect);
      }
      test.steps.push_back(std::move(step));
      AddTest(std::move(test), At(row));
    }
  }

  void ReadSequence(const std::string& name, const YAML::Node& node, const Entry& steps) {
    if (!steps.value.IsSequence() || steps.value.size() == 0) {
      Error(YamlReader::ValueAt(steps), "steps must be a non-empty sequence of steps");
      return;
    }
    PolicyTest test{.name = name, .line = At(node).line};
    for (const YAML::Node& s : steps.value) {
      const int number = static_cast<int>(test.steps.size()) + 1;
      if (!s.IsMap()) {
        Error(At(s), "a step must be a mapping with request, acknowledge, redeem or at");
        return;
      }
      const Fields fields = reader_.ReadFields(s, kStepKeys, "a step");
      PolicyTestStep step{.name = reader_.Optional(fields, "name"), .line = At(s).line};
      if (const Entry* at = YamlReader::Find(fields, "at")) {
        if (!ReadAt(*at, &step)) return;
      }
      const Entry* request = YamlReader::Find(fields, "request");
      const Entry* ack = YamlReader::Find(fields, "acknowledge");
      const Entry* redeem = YamlReader::Find(fields, "redeem");
      const Entry* expect = YamlReader::Find(fields, "expect");
      if ((request != nullptr) + (ack != nullptr) + (redeem != nullptr) > 1) {
        Error(At(s), absl::StrCat("step ", number,
                                  " may have only one of request, acknowledge and redeem"));
        return;
      }
      if (request != nullptr) {
        step.kind = PolicyTestStep::Kind::kRequest;
        if (!ReadRequest({request->value}, absl::StrCat(name, "#", number), &step.request)) return;
      } else if (ack != nullptr) {
        step.kind = PolicyTestStep::Kind::kAcknowledge;
        if (!ReadAcknowledge(*ack, test, &step)) return;
      } else if (redeem != nullptr) {
        step.kind = PolicyTestStep::Kind::kRedeem;
        step.target = FindStep(test, *redeem);
        if (step.target < 0) return;
      } else if (step.advance.has_value() || step.at.has_value()) {
        step.kind = PolicyTestStep::Kind::kWait;
      } else {
        Error(At(s),
              absl::StrCat("step ", number, " needs one of request, acknowledge, redeem or at"));
        return;
      }
      if (expect != nullptr) {
        if (step.kind == PolicyTestStep::Kind::kWait) {
          Error(At(expect->key), "a step that only waits has nothing to expect");
          return;
        }
        ReadExpect(expect->value, &step.expect);
        const Expectation& e = step.expect;
        if (step.kind == PolicyTestStep::Kind::kAcknowledge &&
            (e.verdict || e.lane || e.fired || e.missing_evidence)) {
          Error(At(expect->key), "an acknowledge step can only expect an error");
          return;
        }
      } else if (step.kind == PolicyTestStep::Kind::kRedeem) {
        step.expect.verdict = v1::VERDICT_ALLOW;  // a retry that must redeem
      }
      test.steps.push_back(std::move(step));
    }
    AddTest(std::move(test), At(node));
  }

  bool ReadAt(const Entry& entry, PolicyTestStep* step) {
    std::optional<std::string> text = reader_.ScalarOf(entry, "at");
    if (!text.has_value()) return false;
    absl::string_view duration = *text;
    const bool relative = absl::ConsumePrefix(&duration, "+");
    absl::StatusOr<absl::Duration> d = ParseDuration(duration);
    if (!d.ok()) {
      Error(YamlReader::ValueAt(entry),
            absl::StrCat("at: ", d.status().message(), " (+D advances the clock by D; D sets it ",
                         "to D after the test's start)"));
      return false;
    }
    (relative ? step->advance : step->at) = *d;
    return true;
  }

  // FindStep resolves a reference to an earlier request step: its name or its 1-based number.
  int FindStep(const PolicyTest& test, const Entry& entry) {
    std::optional<std::string> ref = reader_.ScalarOf(entry, Lower(entry.key.Scalar()));
    if (!ref.has_value()) return -1;
    for (size_t i = 0; i < test.steps.size(); ++i) {
      if (test.steps[i].name == *ref || absl::StrCat(i + 1) == *ref) {
        if (test.steps[i].kind != PolicyTestStep::Kind::kRequest) {
          Error(YamlReader::ValueAt(entry),
                absl::StrCat("step ", engine::Quote(*ref), " is not a request: it has no case"));
          return -1;
        }
        return static_cast<int>(i);
      }
    }
    Error(YamlReader::ValueAt(entry),
          absl::StrCat("no earlier step ", engine::Quote(*ref), " (name it, or give its number)"));
    return -1;
  }

  bool ReadAcknowledge(const Entry& entry, const PolicyTest& test, PolicyTestStep* step) {
    if (!entry.value.IsMap()) {
      Error(YamlReader::ValueAt(entry),
            "acknowledge must be a mapping with case, decision and principal");
      return false;
    }
    const Fields fields = reader_.ReadFields(entry.value, kAckKeys, "acknowledge");
    const Entry* c = YamlReader::Find(fields, "case");
    if (c == nullptr) {
      Error(At(entry.value), "acknowledge needs case (the step whose case it decides)");
      return false;
    }
    step->target = FindStep(test, *c);
    if (step->target < 0) return false;
    std::optional<std::string> decision =
        reader_.Required(fields, "decision", entry.value, "acknowledge");
    std::optional<std::string> principal =
        reader_.Required(fields, "principal", entry.value, "acknowledge");
    if (!decision.has_value() || !principal.has_value()) return false;
    const std::string d = absl::AsciiStrToUpper(*decision);
    if (d == "APPROVE") {
      step->decision = v1::DECISION_APPROVE;
    } else if (d == "REJECT") {
      step->decision = v1::DECISION_REJECT;
    } else if (d == "RESOLVE") {
      step->decision = v1::DECISION_RESOLVE;
    } else {
      Error(YamlReader::ValueAt(*YamlReader::Find(fields, "decision")),
            absl::StrCat("unknown decision ", engine::Quote(*decision),
                         "; one of APPROVE, REJECT, RESOLVE"));
      return false;
    }
    step->principal = *principal;
    return true;
  }

  // ReadRequest merges layers over the file's defaults into one request in the eval input format.
  bool ReadRequest(std::vector<YAML::Node> layers, const std::string& id,
                   v1::EvaluateRequest* request) {
    for (const YAML::Node& layer : layers) {
      if (!layer.IsMap()) {
        Error(At(layer), "a request must be a mapping (an EvaluateRequest's fields)");
        return false;
      }
    }
    const SourceLocation at = At(layers.back());
    if (defaults_.has_value()) layers.insert(layers.begin(), *defaults_);
    std::string json;
    if (!AppendMergedJson(layers, &json)) {
      Error(at, absl::StrCat("request: nested deeper than ", kMaxRequestDepth,
                             " levels or larger "
                             "than ",
                             kMaxRequestJsonBytes >> 20, " MiB (a recursive alias?)"));
      return false;
    }
    absl::StatusOr<v1::EvaluateRequest> parsed = ParseRequestJson(json);
    if (!parsed.ok()) {
      Error(at, absl::StrCat("request: ", parsed.status().message()));
      return false;
    }
    *request = *std::move(parsed);
    if (request->request_id().empty()) request->set_request_id(id);
    return true;
  }

  // Set reads a sequence of strings as a sorted set, each checked by valid (which reports).
  template <typename Valid>
  std::optional<std::vector<std::string>> ReadSet(const Entry& entry, absl::string_view key,
                                                  Valid valid) {
    std::vector<std::string> items = reader_.StringList(entry, key, "expect");
    for (const std::string& item : items) valid(item);
    std::sort(items.begin(), items.end());
    return items;
  }

  void ReadExpect(const YAML::Node& node, Expectation* expect) {
    if (!node.IsMap()) {
      Error(At(node),
            absl::StrCat("expect must be a mapping of ", absl::StrJoin(kExpectKeys, ", ")));
      return;
    }
    const Fields fields = reader_.ReadFields(node, kExpectKeys, "expect");
    const engine::Matrix* matrix = file_.matrix.get();
    if (const Entry* e = YamlReader::Find(fields, "verdict")) {
      std::optional<std::string> v = reader_.ScalarOf(*e, "verdict");
      std::optional<v1::Verdict> verdict = v ? engine::ParseVerdict(*v) : std::nullopt;
      if (v.has_value() && !verdict.has_value()) {
        Error(YamlReader::ValueAt(*e),
              absl::StrCat("unknown verdict ", engine::Quote(*v), "; one of ", kVerdictNames));
      }
      expect->verdict = verdict;
    }
    if (const Entry* e = YamlReader::Find(fields, "lane")) {
      std::optional<std::string> lane = reader_.ScalarOf(*e, "lane");
      if (lane.has_value() && !lane->empty() && matrix != nullptr && matrix->FindLane(*lane) < 0) {
        std::vector<std::string> lanes;
        for (const engine::Lane& l : matrix->lanes()) lanes.push_back(l.name);
        Error(YamlReader::ValueAt(*e),
              absl::StrCat("unknown lane ", engine::Quote(*lane), engine::DidYouMean(*lane, lanes),
                           "; the matrix's lanes are ", absl::StrJoin(lanes, ", ")));
      }
      expect->lane = lane;
    }
    if (const Entry* e = YamlReader::Find(fields, "fired")) {
      expect->fired = ReadSet(*e, "fired", [&](const std::string& id) {
        if (matrix == nullptr) return;
        std::vector<std::string> ids;
        for (const engine::Trigger& t : matrix->triggers()) ids.push_back(t.id);
        if (std::find(ids.begin(), ids.end(), id) == ids.end()) {
          Error(YamlReader::ValueAt(*e), absl::StrCat("unknown trigger ", engine::Quote(id),
                                                      engine::DidYouMean(id, ids), " in fired"));
        }
      });
    }
    if (const Entry* e = YamlReader::Find(fields, "missing_evidence")) {
      expect->missing_evidence = ReadSet(*e, "missing_evidence", [](const std::string&) {});
    }
    if (const Entry* e = YamlReader::Find(fields, "error")) {
      std::optional<std::string> code = reader_.ScalarOf(*e, "error");
      std::optional<absl::StatusCode> parsed = code ? ParseStatusCode(*code) : std::nullopt;
      if (code.has_value() && (!parsed.has_value() || *parsed == absl::StatusCode::kOk)) {
        Error(YamlReader::ValueAt(*e),
              absl::StrCat("unknown status code ", engine::Quote(*code),
                           " (e.g. INVALID_ARGUMENT, PERMISSION_DENIED, FAILED_PRECONDITION)"));
      }
      expect->error = parsed;
    }
  }

  void AddTest(PolicyTest test, SourceLocation at) {
    if (!names_.insert(test.name).second) {
      Error(at, absl::StrCat("a second test named ", engine::Quote(test.name)));
      return;
    }
    file_.tests.push_back(std::move(test));
  }

  YamlReader reader_;
  MatrixCache* matrices_;
  std::vector<Diagnostic>* matrix_diagnostics_;
  std::optional<YAML::Node> defaults_;
  absl::flat_hash_set<std::string> names_;
  PolicyTestFile file_;
};

absl::StatusOr<PolicyTestFile> ParseWithCache(absl::string_view text, const std::string& path,
                                              MatrixCache* matrices,
                                              std::vector<Diagnostic>* diagnostics) {
  std::vector<Diagnostic> matrix_diagnostics;
  TestFileParser parser(text, path, matrices, &matrix_diagnostics);
  const bool ok = parser.Parse();
  std::vector<Diagnostic> found = std::move(parser).TakeDiagnostics();
  found.insert(found.begin(), matrix_diagnostics.begin(), matrix_diagnostics.end());
  absl::Status status = engine::ErrorsToStatus(found);
  if (diagnostics != nullptr) {
    diagnostics->insert(diagnostics->end(), found.begin(), found.end());
  }
  if (!ok) {
    return status.ok() ? absl::InvalidArgumentError(absl::StrCat(path, ": invalid")) : status;
  }
  return std::move(parser).TakeFile();
}

// --- Running ----------------------------------------------------------------------------------

std::string SetText(const std::vector<std::string>& items) {
  return absl::StrCat("[", absl::StrJoin(items, ", "), "]");
}

std::string LaneText(absl::string_view lane) { return lane.empty() ? "(none)" : std::string(lane); }

// Fired and lane coverage of one matrix.
struct Coverage {
  absl::flat_hash_set<std::string> triggers;
  absl::flat_hash_set<std::string> lanes;
};

// Compare returns every way the outcome differs from expect, joined by "; ".
std::string Compare(const Expectation& expect, const absl::Status& status,
                    const v1::EvaluateResponse* response) {
  std::vector<std::string> problems;
  if (expect.error.has_value()) {
    if (status.code() != *expect.error) {
      problems.push_back(
          absl::StrCat("error: want ", absl::StatusCodeToString(*expect.error), ", got ",
                       absl::StatusCodeToString(status.code()),
                       status.ok() ? "" : absl::StrCat(" (", status.message(), ")")));
    }
    return absl::StrJoin(problems, "; ");
  }
  if (!status.ok()) {
    return absl::StrCat("error: ", absl::StatusCodeToString(status.code()), ": ", status.message());
  }
  if (response == nullptr) return "";
  if (expect.verdict.has_value() && response->verdict() != *expect.verdict) {
    problems.push_back(absl::StrCat("verdict: want ", engine::VerdictName(*expect.verdict),
                                    ", got ", engine::VerdictName(response->verdict())));
  }
  if (expect.lane.has_value() && response->lane() != *expect.lane) {
    problems.push_back(
        absl::StrCat("lane: want ", LaneText(*expect.lane), ", got ", LaneText(response->lane())));
  }
  if (expect.fired.has_value()) {
    std::vector<std::string> got;
    for (const v1::FiredTrigger& f : response->fired()) got.push_back(f.trigger_id());
    std::sort(got.begin(), got.end());
    got.erase(std::unique(got.begin(), got.end()), got.end());
    if (got != *expect.fired) {
      problems.push_back(
          absl::StrCat("fired: want ", SetText(*expect.fired), ", got ", SetText(got)));
    }
  }
  if (expect.missing_evidence.has_value()) {
    std::vector<std::string> got(response->missing_evidence().begin(),
                                 response->missing_evidence().end());
    std::sort(got.begin(), got.end());
    if (got != *expect.missing_evidence) {
      problems.push_back(absl::StrCat("missing_evidence: want ", SetText(*expect.missing_evidence),
                                      ", got ", SetText(got)));
    }
  }
  return absl::StrJoin(problems, "; ");
}

void Cover(const v1::EvaluateResponse& response, Coverage* coverage) {
  for (const v1::FiredTrigger& f : response.fired()) {
    coverage->triggers.insert(f.trigger_id());
    coverage->lanes.insert(f.lane());
  }
  if (!response.lane().empty()) coverage->lanes.insert(response.lane());
}

bool Redeemed(const service::Service& service, const std::string& case_id) {
  v1::GetCaseRequest request;
  request.set_case_id(case_id);
  absl::StatusOr<v1::Case> c = service.GetCase(request);
  return c.ok() && c->redeemed();
}

// RunOne runs test's steps in a Service of its own; returns "" or why it failed.
std::string RunOne(const PolicyTestFile& file, const PolicyTest& test, Coverage* coverage) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  absl::StatusOr<std::unique_ptr<service::Service>> service = NewOfflineService(file.matrix, clock);
  if (!service.ok()) return absl::StrCat("cannot start: ", service.status().message());
  std::vector<v1::EvaluateResponse> responses(test.steps.size());
  for (size_t i = 0; i < test.steps.size(); ++i) {
    const PolicyTestStep& step = test.steps[i];
    const std::string label =
        test.steps.size() == 1
            ? ""
            : absl::StrCat("step ", i + 1,
                           step.name.empty() ? "" : absl::StrCat(" (", step.name, ")"), ": ");
    if (step.advance.has_value() || step.at.has_value()) {
      const absl::Time to = step.advance ? clock.Now() + *step.advance : start + *step.at;
      if (to < clock.Now()) {
        return absl::StrCat(label, "at: ",
                            step.at ? absl::FormatDuration(*step.at)
                                    : absl::StrCat("+", absl::FormatDuration(*step.advance)),
                            " is before the clock (", absl::FormatDuration(clock.Now() - start),
                            " after the start)");
      }
      clock.Set(to);
      (*service)->cases().RunDueTimers();
    }
    absl::Status status;
    const v1::EvaluateResponse* response = nullptr;
    switch (step.kind) {
      case PolicyTestStep::Kind::kWait:
        continue;
      case PolicyTestStep::Kind::kRequest:
        status = (*service)->Evaluate(step.request, &responses[i]);
        response = &responses[i];
        break;
      case PolicyTestStep::Kind::kAcknowledge: {
        const std::string& case_id = responses[step.target].case_id();
        if (case_id.empty()) {
          return absl::StrCat(label, "acknowledge: step ", step.target + 1, " opened no case");
        }
        status = (*service)
                     ->Acknowledge({.case_id = case_id,
                                    .decision = step.decision,
                                    .actor = cases::Actor::Unverified(step.principal)})
                     .status();
        break;
      }
      case PolicyTestStep::Kind::kRedeem: {
        const std::string& case_id = responses[step.target].case_id();
        if (case_id.empty()) {
          return absl::StrCat(label, "redeem: step ", step.target + 1, " opened no case");
        }
        v1::EvaluateRequest retry = test.steps[step.target].request;
        retry.set_request_id(absl::StrCat(retry.request_id(), "#redeem", i + 1));
        retry.mutable_approval()->set_case_id(case_id);
        const bool was_redeemed = Redeemed(**service, case_id);
        status = (*service)->Evaluate(retry, &responses[i]);
        response = &responses[i];
        // An ALLOW expected of a retry must come from this redemption, not from a request that
        // no longer fires.
        if (status.ok() && step.expect.verdict == v1::VERDICT_ALLOW &&
            (was_redeemed || !Redeemed(**service, case_id))) {
          return absl::StrCat(
              label, "redeem: case ", case_id, " was not redeemed",
              responses[i].reason().empty() ? "" : absl::StrCat(" (", responses[i].reason(), ")"));
        }
        break;
      }
    }
    if (response != nullptr && status.ok()) Cover(*response, coverage);
    std::string problem = Compare(step.expect, status, status.ok() ? response : nullptr);
    if (!problem.empty()) return absl::StrCat(label, problem);
  }
  return "";
}

// XmlEscape returns s as XML 1.0 character data or attribute text: markup characters escaped,
// control characters XML cannot carry and bytes that are not UTF-8 replaced by U+FFFD.
std::string XmlEscape(absl::string_view s) {
  constexpr char kReplacement[] = "\xEF\xBF\xBD";
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t length = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
      if (IsValidUtf8(s.substr(i, length))) {
        out.append(s.data() + i, length);
        i += length;
      } else {
        out += kReplacement;
        ++i;
      }
      continue;
    }
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '\t':
      case '\n':
      case '\r':
        absl::StrAppend(&out, "&#", static_cast<int>(c), ";");  // kept in attributes too
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out += kReplacement;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  return out;
}

}  // namespace

bool IsPolicyTestFileName(absl::string_view name) { return absl::EndsWith(name, "_test.yaml"); }

absl::StatusOr<PolicyTestFile> ParsePolicyTestFile(absl::string_view text, const std::string& path,
                                                   std::vector<Diagnostic>* diagnostics) {
  MatrixCache matrices;
  return ParseWithCache(text, path, &matrices, diagnostics);
}

absl::StatusOr<std::vector<PolicyTestFile>> LoadPolicyTests(const std::vector<std::string>& paths,
                                                            std::vector<Diagnostic>* diagnostics) {
  std::vector<Diagnostic> found;
  std::vector<std::string> files;
  for (const std::string& path : paths) {
    std::error_code error;
    if (!std::filesystem::is_directory(path, error)) {
      files.push_back(path);  // a file, or reported as unreadable below
      continue;
    }
    std::vector<std::string> under;
    for (auto it = std::filesystem::recursive_directory_iterator(path, error);
         !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
      if (it->is_regular_file(error) && IsPolicyTestFileName(it->path().filename().string())) {
        under.push_back(it->path().lexically_normal().string());
      }
    }
    if (error) {
      found.push_back({.file = path, .message = absl::StrCat("cannot list: ", error.message())});
    } else if (under.empty()) {
      found.push_back({.file = path, .message = "no policy test files (*_test.yaml) here"});
    }
    std::sort(under.begin(), under.end());
    files.insert(files.end(), under.begin(), under.end());
  }
  MatrixCache matrices;
  std::vector<PolicyTestFile> loaded;
  for (const std::string& file : files) {
    absl::StatusOr<std::string> text =
        engine::ReadYamlFile(file, kMaxTestFileBytes, "the test file", &found);
    if (!text.ok()) continue;
    absl::StatusOr<PolicyTestFile> parsed = ParseWithCache(*text, file, &matrices, &found);
    if (parsed.ok()) loaded.push_back(*std::move(parsed));
  }
  absl::Status status = engine::ErrorsToStatus(found);
  if (diagnostics != nullptr) {
    diagnostics->insert(diagnostics->end(), found.begin(), found.end());
  }
  if (!status.ok()) return status;
  return loaded;
}

PolicyTestReport RunPolicyTests(const std::vector<PolicyTestFile>& files) {
  PolicyTestReport report;
  std::map<std::string, Coverage> coverage;  // by matrix path
  std::vector<const PolicyTestFile*> matrix_order;
  for (const PolicyTestFile& file : files) {
    auto [it, inserted] = coverage.try_emplace(file.matrix_path);
    if (inserted) matrix_order.push_back(&file);
    for (const PolicyTest& test : file.tests) {
      const absl::Time began = absl::Now();
      std::string failure = RunOne(file, test, &it->second);
      report.results.push_back({.file = file.path,
                                .line = test.line,
                                .name = test.name,
                                .failure = std::move(failure),
                                .took = absl::Now() - began});
      ++(report.results.back().failure.empty() ? report.passed : report.failed);
    }
  }
  for (const PolicyTestFile* file : matrix_order) {
    const Coverage& seen = coverage[file->matrix_path];
    for (const engine::Lane& lane : file->matrix->lanes()) {
      if (!seen.lanes.contains(lane.name)) {
        report.uncovered.push_back({.matrix = file->matrix_path, .lane = lane.name});
      }
    }
    for (const engine::Trigger& t : file->matrix->triggers()) {
      if (!seen.triggers.contains(t.id)) {
        report.uncovered.push_back({.matrix = file->matrix_path,
                                    .lane = file->matrix->lanes()[t.lane].name,
                                    .trigger = t.id});
      }
    }
  }
  return report;
}

std::string PolicyTestReport::Text() const {
  std::string out;
  for (const PolicyTestResult& r : results) {
    if (r.failure.empty()) continue;
    absl::StrAppend(&out, r.file, ":", r.line, ": test ", r.name, ": ", r.failure, "\n");
  }
  absl::StrAppend(&out, passed, " passed, ", failed, " failed\n");
  for (const Uncovered& u : uncovered) {
    if (u.trigger.empty()) {
      absl::StrAppend(&out, u.matrix, ": not covered: lane ", u.lane, "\n");
    } else {
      absl::StrAppend(&out, u.matrix, ": not covered: trigger ", u.trigger, " (lane ", u.lane,
                      ")\n");
    }
  }
  return out;
}

std::string PolicyTestReport::JUnit() const {
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  absl::StrAppend(&out, "<testsuites name=\"agate test\" tests=\"", results.size(),
                  "\" failures=\"", failed, "\">\n");
  for (size_t i = 0; i < results.size();) {
    size_t end = i;
    int failures = 0;
    absl::Duration took;
    while (end < results.size() && results[end].file == results[i].file) {
      failures += results[end].failure.empty() ? 0 : 1;
      took += results[end].took;
      ++end;
    }
    const std::string file = XmlEscape(results[i].file);
    absl::StrAppend(&out, "  <testsuite name=\"", file, "\" tests=\"", end - i, "\" failures=\"",
                    failures, "\" errors=\"0\" time=\"",
                    absl::StrFormat("%.6f", absl::ToDoubleSeconds(took)), "\">\n");
    for (; i < end; ++i) {
      const PolicyTestResult& r = results[i];
      absl::StrAppend(&out, "    <testcase name=\"", XmlEscape(r.name), "\" classname=\"", file,
                      "\" file=\"", file, "\" line=\"", r.line, "\" time=\"",
                      absl::StrFormat("%.6f", absl::ToDoubleSeconds(r.took)), "\"");
      if (r.failure.empty()) {
        out += "/>\n";
        continue;
      }
      absl::StrAppend(
          &out, ">\n      <failure message=\"", XmlEscape(r.failure), "\">",
          XmlEscape(absl::StrCat(r.file, ":", r.line, ": test ", r.name, ": ", r.failure)),
          "</failure>\n    </testcase>\n");
    }
    out += "  </testsuite>\n";
  }
  out += "</testsuites>\n";
  return out;
}

}  // namespace agate::client
