// Policy tests (client/policy_test.h): loading with FILE:LINE:COL errors, running single
// requests, tables and sequences on a virtual clock, the report's text, JUnit and coverage.
#include "client/policy_test.h"

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fixtures.h"
#include "tests/testing/process.h"

namespace agate::client {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

// Three lanes, four triggers: enough for every kind of expectation.
constexpr char kMatrix[] = R"(version: 1
name: unit
lanes:
  customer: {owner: support-lead, backup: support-manager, sla: 30m, verdict: HOLD,
             evidence: [draft, context], on_timeout: notify_backup}
  ops: {owner: ops-oncall, backup: eng-lead, sla: 15m, verdict: SAFE_MODE, scope: workflow}
  financial: {owner: finance-approver, backup: controller, sla: 4h, verdict: BLOCK,
              evidence: [proposed_action], on_timeout: expire}
triggers:
  - {id: low-confidence, lane: customer, when: "action.customer_facing && model.confidence < 0.72"}
  - {id: retry-storm, lane: ops, when: 'count("retry", "10m") > 3'}
  - {id: refund-over-limit, lane: financial, when: 'action.type == "refund" && action.amount > 250.0'}
  - {id: big-discount, lane: financial, when: 'action.type == "discount" && action.amount > 1000.0'}
)";

class PolicyTestTest : public ::testing::Test {
 protected:
  void SetUp() override { Write("matrix.yaml", kMatrix); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = absl::StrCat(dir_.path(), "/", name);
    std::ofstream(path) << text;
    return path;
  }

  // Load writes text as NAME (default t_test.yaml) and loads it; errors go to diagnostics_.
  absl::StatusOr<std::vector<PolicyTestFile>> Load(const std::string& text,
                                                   const std::string& name = "t_test.yaml") {
    diagnostics_.clear();
    return LoadPolicyTests({Write(name, text)}, &diagnostics_);
  }

  // Run loads text (which must load) and runs it.
  PolicyTestReport Run(const std::string& text) {
    absl::StatusOr<std::vector<PolicyTestFile>> files = Load(text);
    EXPECT_TRUE(files.ok()) << files.status();
    if (!files.ok()) return {};
    return RunPolicyTests(*files);
  }

  // Errors returns the diagnostics as printed, with the temporary folder's path cut off.
  std::vector<std::string> Errors() const {
    std::vector<std::string> out;
    for (const engine::Diagnostic& d : diagnostics_) {
      std::string s = d.ToString();
      if (s.rfind(dir_.path() + "/", 0) == 0) s.erase(0, dir_.path().size() + 1);
      out.push_back(s);
    }
    return out;
  }

  // Failures returns the report's failing lines with the temporary folder's path cut off.
  std::vector<std::string> Failures(const PolicyTestReport& report) const {
    std::vector<std::string> out;
    for (const PolicyTestResult& r : report.results) {
      if (!r.failure.empty()) out.push_back(absl::StrCat(r.line, ": ", r.name, ": ", r.failure));
    }
    return out;
  }

  testing::TempDir dir_;
  std::vector<engine::Diagnostic> diagnostics_;
};

constexpr char kHeader[] = "matrix: matrix.yaml\ndefaults: {tenant_id: t1, workflow_id: w}\n";

TEST_F(PolicyTestTest, PassesWhenEveryExpectationHolds) {
  PolicyTestReport report = Run(absl::StrCat(kHeader, R"(tests:
  - name: refund over the limit
    request: {action: {type: refund, amount: 300}, evidence: {proposed_action: refund 300}}
    expect: {verdict: BLOCK, lane: financial, fired: [refund-over-limit], missing_evidence: []}
  - name: nothing fires
    request: {action: {type: refund, amount: 250}}
    expect: {verdict: allow, lane: "", fired: []}
)"));
  EXPECT_EQ(report.passed, 2);
  EXPECT_EQ(report.failed, 0);
  EXPECT_THAT(Failures(report), IsEmpty());
}

TEST_F(PolicyTestTest, ReportsEachKindOfMismatchOnOneLine) {
  PolicyTestReport report = Run(absl::StrCat(kHeader, R"(tests:
  - name: verdict
    request: {action: {type: refund, amount: 300}}
    expect: {verdict: ALLOW}
  - name: lane
    request: {action: {type: refund, amount: 300}}
    expect: {lane: customer}
  - name: no lane
    request: {action: {type: refund, amount: 1}}
    expect: {lane: financial}
  - name: fired
    request: {action: {type: refund, amount: 300, customer_facing: true}}
    expect: {fired: [refund-over-limit]}
  - name: missing evidence
    request: {action: {type: refund, amount: 300}}
    expect: {missing_evidence: [proposed_action, receipt]}
  - name: error wanted
    request: {action: {type: refund, amount: 300}}
    expect: {error: INVALID_ARGUMENT}
  - name: refused
    request: {tenant_id: "", action: {type: refund}}
    expect: {verdict: ALLOW}
  - name: everything at once
    request: {action: {type: refund, amount: 300}}
    expect: {verdict: HOLD, lane: customer}
)"));
  EXPECT_EQ(report.passed, 0);
  EXPECT_THAT(
      Failures(report),
      ElementsAre("4: verdict: verdict: want ALLOW, got BLOCK",
                  "7: lane: lane: want customer, got financial",
                  "10: no lane: lane: want financial, got (none)",
                  "13: fired: fired: want [refund-over-limit], got [low-confidence, "
                  "refund-over-limit]",
                  "16: missing evidence: missing_evidence: want [proposed_action, receipt], got "
                  "[proposed_action]",
                  "19: error wanted: error: want INVALID_ARGUMENT, got OK",
                  "22: refused: error: INVALID_ARGUMENT: tenant_id: required",
                  "25: everything at once: verdict: want HOLD, got BLOCK; lane: want customer, "
                  "got financial"));
}

TEST_F(PolicyTestTest, ReportTextNamesFileAndLineOfEachFailingTest) {
  PolicyTestReport report = Run(absl::StrCat(kHeader, R"(tests:
  - name: passes
    request: {action: {type: refund, amount: 300}}
    expect: {verdict: BLOCK}
  - name: blocks
    request: {action: {type: refund, amount: 1}}
    expect: {verdict: BLOCK}
)"));
  const std::string file = absl::StrCat(dir_.path(), "/t_test.yaml");
  EXPECT_THAT(
      report.Text(),
      AllOf(HasSubstr(absl::StrCat(file, ":7: test blocks: verdict: want BLOCK, got ALLOW\n",
                                   "1 passed, 1 failed\n")),
            Not(HasSubstr("test passes"))));
}

TEST_F(PolicyTestTest, TableRowsAreTestsWithTheirOwnLines) {
  PolicyTestReport report = Run(absl::StrCat(kHeader, R"(tests:
  - name: refunds
    base: {action: {type: refund, amount: 300}}
    expect: {verdict: BLOCK, lane: financial}
    rows:
      - {name: over}
      - {name: at the limit, request: {action: {amount: 250}}, expect: {verdict: ALLOW}}
      - {name: wrong, request: {action: {amount: 100}}}
      - request: {action: {type: discount}}
        expect: {verdict: BLOCK}
)"));
  ASSERT_THAT(report.results, SizeIs(4));
  EXPECT_EQ(report.results[0].name, "refunds/over");
  EXPECT_EQ(report.results[0].line, 8);
  EXPECT_EQ(report.results[3].name, "refunds/row 4");
  EXPECT_EQ(report.passed, 2);
  // A row's request merges into the base (type stays refund); its expect replaces the table's.
  EXPECT_THAT(Failures(report), ElementsAre("10: refunds/wrong: verdict: want BLOCK, got ALLOW; "
                                            "lane: want financial, got (none)",
                                            "11: refunds/row 4: verdict: want BLOCK, got ALLOW"));
}

TEST_F(PolicyTestTest, ScalarsTakeTheirYamlTypes) {
  // Plain scalars that read as JSON numbers, booleans or null are those; quoted ones are strings.
  // attributes (a Struct) keeps what it is given: a quoted "25" would not compare with 20.0.
  absl::StatusOr<std::vector<PolicyTestFile>> files = Load(absl::StrCat(kHeader, R"(tests:
  - name: types
    request:
      action: {amount: 1.5e2, customer_facing: true}
      attributes: {n: 25, s: "25", b: false, z: null, t: 2026-01-01, w: yes}
)"));
  ASSERT_TRUE(files.ok()) << files.status();
  const v1::EvaluateRequest& r = (*files)[0].tests[0].steps[0].request;
  EXPECT_EQ(r.action().amount(), 150);
  EXPECT_TRUE(r.action().customer_facing());
  const auto& a = r.attributes().fields();
  EXPECT_EQ(a.at("n").number_value(), 25);
  EXPECT_EQ(a.at("s").string_value(), "25");
  EXPECT_TRUE(a.at("b").has_bool_value());
  EXPECT_TRUE(a.at("z").has_null_value());
  EXPECT_EQ(a.at("t").string_value(), "2026-01-01");
  EXPECT_EQ(a.at("w").string_value(), "yes");
  EXPECT_EQ(r.request_id(), "types");  // given one: the test's name
  EXPECT_EQ(r.tenant_id(), "t1");      // from defaults
}

TEST_F(PolicyTestTest, SequenceApprovesAndRedeemsOnce) {
  PolicyTestReport report = Run(absl::StrCat(kHeader, R"(tests:
  - name: approve then redeem
    steps:
      - {name: ask, request: {action: {type: refund, amount: 400}}, expect: {verdict: BLOCK}}
      - acknowledge: {case: ask, decision: APPROVE, principal: finance-approver}
      - redeem: ask
      - {redeem: 1, expect: {verdict: BLOCK}}
  - name: reject then retry
    steps:
      - {name: ask, request: {action: {type: refund, amount: 400}}}
      - acknowledge: {case: 1, decision: reject, principal: controller}
      - redeem: ask
  - name: not the owner
    steps:
      - {name: ask, request: {action: {type: refund, amount: 400}}}
      - acknowledge: {case: ask, decision: APPROVE, principal: support-lead}
        expect: {error: PERMISSION_DENIED}
      - acknowledge: {case: ask, decision: APPROVE, principal: support-lead}
)"));
  EXPECT_EQ(report.passed, 1);
  EXPECT_THAT(Failures(report),
              ElementsAre(HasSubstr("10: reject then retry: step 3: redeem: case "),
                          AllOf(HasSubstr("15: not the owner: step 3: error: PERMISSION_DENIED: "),
                                Not(HasSubstr("step 2")))));
  EXPECT_THAT(Failures(report)[0], HasSubstr("was not redeemed"));
}

TEST_F(PolicyTestTest, VirtualClockDrivesCountWindowsAndTimers) {
  PolicyTestReport report = Run(absl::StrCat(kHeader, R"(tests:
  - name: four retries in ten minutes
    steps:
      - {request: {action: {type: sync}, signals: {retry: 2}}}
      - {at: +5m, request: {action: {type: sync}, signals: {retry: 1}}, expect: {verdict: ALLOW}}
      - {at: 9m, request: {action: {type: sync}, signals: {retry: 1}}, expect: {verdict: SAFE_MODE}}
  - name: the window slides
    steps:
      - {request: {action: {type: sync}, signals: {retry: 3}}}
      - {at: +11m, request: {action: {type: sync}, signals: {retry: 1}}, expect: {verdict: ALLOW}}
  - name: the clock never goes back
    steps:
      - {at: 5m, request: {action: {type: sync}}}
      - {at: 1m, request: {action: {type: sync}}}
  - name: an unanswered refund expires at its SLA
    steps:
      - {name: ask, request: {action: {type: refund, amount: 400}}}
      - at: +4h1m
      - acknowledge: {case: ask, decision: APPROVE, principal: finance-approver}
        expect: {error: FAILED_PRECONDITION}
  - name: not before
    steps:
      - {name: ask, request: {action: {type: refund, amount: 400}}}
      - at: +3h59m
      - acknowledge: {case: ask, decision: APPROVE, principal: finance-approver}
      - redeem: ask
)"));
  EXPECT_THAT(Failures(report), ElementsAre("13: the clock never goes back: step 2: at: 1m is "
                                            "before the clock (5m after the start)"));
  EXPECT_EQ(report.passed, 4);
}

TEST_F(PolicyTestTest, ListsWhatNoTestFired) {
  PolicyTestReport report = Run(absl::StrCat(kHeader, R"(tests:
  - name: refund
    request: {action: {type: refund, amount: 300}}
)"));
  std::vector<std::string> lines;
  for (const Uncovered& u : report.uncovered) {
    lines.push_back(absl::StrCat(u.lane, " ", u.trigger));
  }
  EXPECT_THAT(lines, ElementsAre("customer ", "ops ", "customer low-confidence", "ops retry-storm",
                                 "financial big-discount"));
  EXPECT_THAT(report.Text(), AllOf(HasSubstr("1 passed, 0 failed\n"),
                                   HasSubstr(absl::StrCat(dir_.path(),
                                                          "/matrix.yaml: not covered: trigger "
                                                          "big-discount (lane financial)\n")),
                                   HasSubstr("matrix.yaml: not covered: lane ops\n")));
}

TEST_F(PolicyTestTest, JUnitEscapesAndCountsFailures) {
  PolicyTestReport report = Run(absl::StrCat(kHeader, R"(tests:
  - name: a <b> & "c" 'd'
    request: {action: {type: refund, amount: 300}}
    expect: {verdict: ALLOW}
  - name: ok
    request: {action: {type: refund, amount: 300}}
)"));
  const std::string xml = report.JUnit();
  EXPECT_THAT(xml,
              AllOf(HasSubstr(R"(<testsuites name="agate test" tests="2" failures="1">)"),
                    HasSubstr(R"(tests="2" failures="1" errors="0")"),
                    HasSubstr(R"(<testcase name="a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;")"),
                    HasSubstr(R"(<failure message="verdict: want ALLOW, got BLOCK">)"),
                    HasSubstr(R"(<testcase name="ok")"), Not(HasSubstr("<b>"))));
  // Every element that opens closes (the CLI test parses it with a real XML parser).
  auto count = [&](const std::string& s) {
    int n = 0;
    for (size_t at = xml.find(s); at != std::string::npos; at = xml.find(s, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("<testsuite "), count("</testsuite>"));
  EXPECT_EQ(count("<failure "), count("</failure>"));
}

struct FileErrorCase {
  std::string name;
  std::string text;
  std::string want;  // the first error, as printed, without the folder
};

void PrintTo(const FileErrorCase& c, std::ostream* os) { *os << c.name; }

class PolicyTestFileErrorTest : public PolicyTestTest,
                                public ::testing::WithParamInterface<FileErrorCase> {};

TEST_P(PolicyTestFileErrorTest, ReportsTheProblemAtItsPosition) {
  absl::StatusOr<std::vector<PolicyTestFile>> files = Load(GetParam().text);
  EXPECT_FALSE(files.ok());
  ASSERT_THAT(Errors(), Not(IsEmpty()));
  EXPECT_EQ(Errors()[0], GetParam().want);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PolicyTestFileErrorTest,
    ::testing::ValuesIn(std::vector<FileErrorCase>{
        {"BadYaml", "matrix: matrix.yaml\ntests: [\n  - name: x\n",
         "t_test.yaml:3:3: error: invalid YAML: illegal block entry"},
        {"UnknownKey",
         "matrix: matrix.yaml\ntests:\n  - name: x\n    request: {}\n    expekt: {verdict: "
         "BLOCK}\n",
         "t_test.yaml:5:5: error: unknown key 'expekt' in a test (did you mean 'expect'?)"},
        {"UnknownVerdict",
         "matrix: matrix.yaml\ntests:\n  - name: x\n    request: {}\n    expect: {verdict: BLOK}\n",
         "t_test.yaml:5:23: error: unknown verdict 'BLOK'; one of ALLOW, PARK_ITEM, HOLD, "
         "SAFE_MODE, BLOCK, DENY"},
        {"MissingMatrix", "matrix: nope.yaml\ntests:\n  - {name: x, request: {}}\n",
         "nope.yaml: error: cannot read: No such file or directory"},
        {"NoMatrixKey", "tests:\n  - {name: x, request: {}}\n",
         "t_test.yaml:1:1: error: the test file: missing required key 'matrix'"},
        {"UnknownTrigger",
         "matrix: matrix.yaml\ntests:\n  - name: x\n    request: {}\n    expect: {fired: "
         "[retry]}\n",
         "t_test.yaml:5:21: error: unknown trigger 'retry' in fired"},
        {"UnknownLane",
         "matrix: matrix.yaml\ntests:\n  - name: x\n    request: {}\n    expect: {lane: finance}\n",
         "t_test.yaml:5:20: error: unknown lane 'finance'; the "
         "matrix's lanes are customer, ops, financial"},
        {"UnknownRequestField",
         "matrix: matrix.yaml\ntests:\n  - name: x\n    request: {acton: {type: refund}}\n",
         "t_test.yaml:4:14: error: request: not an EvaluateRequest in JSON: acton: Cannot find "
         "field."},
        {"NoRequest", "matrix: matrix.yaml\ntests:\n  - name: x\n    expect: {verdict: BLOCK}\n",
         "t_test.yaml:3:5: error: test 'x' needs exactly one of request, rows (with base) or "
         "steps"},
        {"BadAt", "matrix: matrix.yaml\ntests:\n  - name: x\n    steps:\n      - {at: soon}\n",
         "t_test.yaml:5:14: error: at: invalid duration 'soon' (expected e.g. 30m, 2h, 1h30m, "
         "90s, 1d; units d h m s ms) (+D advances the clock by D; D sets it to D after the "
         "test's start)"},
        {"RedeemUnknownStep",
         "matrix: matrix.yaml\ntests:\n  - name: x\n    steps:\n      - {redeem: ask}\n",
         "t_test.yaml:5:18: error: no earlier step 'ask' (name it, or give its number)"},
        {"UnknownDecision",
         "matrix: matrix.yaml\ntests:\n  - name: x\n    steps:\n      - {name: a, request: {}}\n"
         "      - acknowledge: {case: a, decision: maybe, principal: p}\n",
         "t_test.yaml:6:42: error: unknown decision 'maybe'; one of APPROVE, REJECT, RESOLVE"},
        {"UnknownStatusCode",
         "matrix: matrix.yaml\ntests:\n  - name: x\n    request: {}\n    expect: {error: NOPE}\n",
         "t_test.yaml:5:21: error: unknown status code 'NOPE' (e.g. INVALID_ARGUMENT, "
         "PERMISSION_DENIED, FAILED_PRECONDITION)"},
        {"AcknowledgeExpectsAVerdict",
         "matrix: matrix.yaml\ntests:\n  - name: x\n    steps:\n      - {name: a, request: {}}\n"
         "      - acknowledge: {case: a, decision: APPROVE, principal: p}\n"
         "        expect: {verdict: ALLOW}\n",
         "t_test.yaml:7:9: error: an acknowledge step can only expect an error"},
        {"RecursiveAlias",
         "matrix: matrix.yaml\ndefaults: &a {tenant_id: t1, attributes: {x: *a}}\ntests:\n"
         "  - {name: x, request: {}}\n",
         "t_test.yaml:4:24: error: request: nested deeper than 32 levels or larger than 1 MiB (a "
         "recursive alias?)"},
        {"DuplicateName",
         "matrix: matrix.yaml\ntests:\n  - {name: x, request: {}}\n  - {name: x, request: {}}\n",
         "t_test.yaml:4:5: error: a second test named 'x'"},
        {"NoTests", "matrix: matrix.yaml\ntests: []\n",
         "t_test.yaml:2:8: error: tests must be a non-empty sequence of tests"},
    }),
    [](const auto& info) { return info.param.name; });

TEST_F(PolicyTestTest, MatrixErrorsAreReportedWithTheirOwnPositions) {
  Write("broken.yaml", "version: 1\nlanes:\n  a: {owner: o, sla: 30x, verdict: HOLD}\n");
  EXPECT_FALSE(Load("matrix: broken.yaml\ntests:\n  - {name: x, request: {}}\n").ok());
  EXPECT_THAT(Errors(), ElementsAre(HasSubstr("broken.yaml:1:1: error: the matrix: missing "
                                              "required key 'triggers'"),
                                    HasSubstr("broken.yaml:3:22: error: invalid duration '30x'"),
                                    "t_test.yaml:1:9: error: matrix '" + dir_.path() +
                                        "/broken.yaml' cannot be loaded: it has errors (above)"));
}

// Mutations of the bundled test file are errors at a position or tests that run: never a crash.
TEST_F(PolicyTestTest, SurvivesMutationsOfTheBundledTests) {
  std::ifstream in(AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix_test.yaml");
  const std::string bundled((std::istreambuf_iterator<char>(in)), {});
  ASSERT_THAT(bundled, Not(IsEmpty()));
  std::ifstream matrix(AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml");
  Write("escalation-matrix.yaml", std::string((std::istreambuf_iterator<char>(matrix)), {}));
  std::mt19937 random(21);
  int rejected = 0;
  for (int i = 0; i < 300; ++i) {
    std::string mutated = bundled;
    testing::Mutate(&mutated, 1 + i % 4, random);
    absl::StatusOr<std::vector<PolicyTestFile>> files = Load(mutated);
    if (files.ok()) {
      RunPolicyTests(*files);
      continue;
    }
    ++rejected;
    ASSERT_THAT(Errors(), Not(IsEmpty())) << mutated;
  }
  EXPECT_GT(rejected, 100);
}

TEST_F(PolicyTestTest, FindsTestFilesInFoldersByName) {
  Write("a_test.yaml", absl::StrCat(kHeader, "tests:\n  - {name: a, request: {}}\n"));
  Write("b_test.yaml", absl::StrCat(kHeader, "tests:\n  - {name: b, request: {}}\n"));
  Write("notes.yaml", "not: a test\n");
  absl::StatusOr<std::vector<PolicyTestFile>> files = LoadPolicyTests({dir_.path()}, nullptr);
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_THAT(*files, SizeIs(2));
  EXPECT_EQ((*files)[0].tests[0].name, "a");
  EXPECT_EQ((*files)[1].tests[0].name, "b");
  EXPECT_TRUE(IsPolicyTestFileName("escalation-matrix_test.yaml"));
  EXPECT_FALSE(IsPolicyTestFileName("escalation-matrix.test.yaml"));

  std::vector<engine::Diagnostic> diagnostics;
  const std::string empty = absl::StrCat(dir_.path(), "/empty");
  std::filesystem::create_directory(empty);
  EXPECT_FALSE(LoadPolicyTests({empty}, &diagnostics).ok());
  ASSERT_THAT(diagnostics, SizeIs(1));
  EXPECT_EQ(diagnostics[0].ToString(),
            absl::StrCat(empty, ": error: no policy test files (*_test.yaml) here"));
}

}  // namespace
}  // namespace agate::client
