// `agate test` and `agate shadow`, run as the built binary: exit codes and output lines.
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"

namespace agate::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kExamples[] = AGATE_SOURCE_DIR "/deploy/examples";
constexpr char kBundled[] = AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml";

class PolicyCliTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = absl::StrCat(dir_.path(), "/", name);
    std::ofstream(path) << text;
    return path;
  }
  // A test file of the bundled matrix (copied next to it: the matrix path is relative).
  std::string WriteTests(const std::string& tests) {
    std::ifstream in(kBundled);
    Write("matrix.yaml", std::string((std::istreambuf_iterator<char>(in)), {}));
    return Write("t_test.yaml",
                 absl::StrCat("matrix: matrix.yaml\ndefaults: {tenant_id: t1}\ntests:\n", tests));
  }
  TempDir dir_;
};

TEST_F(PolicyCliTest, TheBundledMatrixTestsPassAndCoverEverything) {
  RunResult r = testing::Run({AGATE_CLI_BIN, "test", "--require-coverage", kExamples});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, MatchesRegex("[0-9]+ passed, 0 failed\n"));
  EXPECT_EQ(r.err, "");
}

TEST_F(PolicyCliTest, AFailingTestExitsOneWithItsLine) {
  const std::string file = WriteTests(
      "  - name: refund\n"
      "    request: {action: {type: refund, amount: 300}}\n"
      "    expect: {verdict: BLOCK}\n"
      "  - name: small refund\n"
      "    request: {action: {type: refund, amount: 30}}\n"
      "    expect: {verdict: BLOCK}\n");
  RunResult r = testing::Run({AGATE_CLI_BIN, "test", file});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out,
              AllOf(StartsWith(absl::StrCat(file,
                                            ":7: test small refund: verdict: want BLOCK, "
                                            "got ALLOW\n1 passed, 1 failed\n")),
                    HasSubstr("matrix.yaml: not covered: trigger admin-scope (lane security)\n"),
                    HasSubstr("matrix.yaml: not covered: lane customer\n")));
}

TEST_F(PolicyCliTest, RequireCoverageFailsOnWhatNoTestFired) {
  const std::string file = WriteTests("  - {name: refund, request: {action: {type: refund}}}\n");
  EXPECT_EQ(testing::Run({AGATE_CLI_BIN, "test", file}).exit_code, 0);
  RunResult r = testing::Run({AGATE_CLI_BIN, "test", "--require-coverage", file});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, AllOf(HasSubstr("1 passed, 0 failed\n"),
                           HasSubstr("coverage required: 15 lanes and triggers not covered\n")));
}

TEST_F(PolicyCliTest, AFileErrorExitsTwoWithItsPosition) {
  const std::string file = WriteTests(
      "  - name: x\n"
      "    request: {}\n"
      "    expect: {verdict: BLOK}\n");
  RunResult r = testing::Run({AGATE_CLI_BIN, "test", file});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, absl::StrCat(file,
                                ":6:23: error: unknown verdict 'BLOK'; one of ALLOW, "
                                "PARK_ITEM, HOLD, SAFE_MODE, BLOCK, DENY\n"));
  EXPECT_EQ(r.out, "");
  RunResult missing = testing::Run({AGATE_CLI_BIN, "test", dir_.path() + "/nope_test.yaml"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("nope_test.yaml: error: cannot read: No such file or "
                                     "directory"));
}

TEST_F(PolicyCliTest, JUnitIsWellFormedXml) {
  const std::string file = WriteTests(
      "  - name: a <b> & \"c\"\n"
      "    request: {action: {type: refund, amount: 300}}\n"
      "    expect: {verdict: ALLOW}\n"
      "  - {name: ok, request: {action: {type: refund, amount: 300}}, expect: {verdict: BLOCK}}\n");
  const std::string xml = dir_.path() + "/junit.xml";
  EXPECT_EQ(testing::Run({AGATE_CLI_BIN, "test", "--junit", xml, file}).exit_code, 1);
  // A real XML parser reads it back.
  RunResult parsed = testing::Run({"/usr/bin/python3", "-c",
                                   "import sys, xml.dom.minidom as m\n"
                                   "d = m.parse(sys.argv[1])\n"
                                   "for c in d.getElementsByTagName('testcase'):\n"
                                   "  f = c.getElementsByTagName('failure')\n"
                                   "  print(c.getAttribute('name'), c.getAttribute('line'),\n"
                                   "        f[0].getAttribute('message') if f else 'passed')\n",
                                   xml});
  EXPECT_EQ(parsed.exit_code, 0) << parsed.err;
  EXPECT_EQ(parsed.out,
            "a <b> & \"c\" 4 verdict: want ALLOW, got BLOCK\n"
            "ok 7 passed\n");
}

TEST_F(PolicyCliTest, ShadowReportsChangesAndTheForecast) {
  // The candidate parks every refund over $100 for the policy lane.
  std::ifstream in(kBundled);
  const std::string candidate =
      Write("candidate.yaml",
            absl::StrCat(std::string((std::istreambuf_iterator<char>(in)), {}),
                         "\n  - id: refund-review\n    lane: policy\n"
                         "    when: action.type == \"refund\" && action.amount > 100.0\n"));
  std::string lines;
  for (int i = 0; i < 10; ++i) {
    absl::StrAppend(&lines, R"({"request_id":"r)", i, R"(","tenant_id":"t1","item_id":"i)", i,
                    R"(","action":{"type":"refund","amount":)", 50 * i, "}}\n");
  }
  const std::string requests = Write("requests.jsonl", lines);
  RunResult r = testing::Run({AGATE_CLI_BIN, "shadow", "--live", kBundled, "--candidate", candidate,
                              "--requests", requests, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // r3, r4, r5: ALLOW -> PARK_ITEM; r6..r9 stay BLOCK (and open a policy case too).
  EXPECT_THAT(
      r.out,
      AllOf(
          StartsWith(R"({"requests":10,"changed":3,)"),
          HasSubstr(
              R"({"live":"VERDICT_ALLOW","shadow":"VERDICT_PARK_ITEM","count":3,"samples":["r3","r4","r5"]})"),
          HasSubstr(
              R"({"trigger_id":"refund-review","newly_fires":7,"stops_firing":0,"samples":["r3","r4","r5"]})"),
          HasSubstr(
              R"({"lane":"policy","owner":"workflow-owner","sla_seconds":7200,"live_escalations":0,"escalations":7,"per_hour":7,"time_per_case_seconds":7200,"time_measured":false,"review_hours_per_day":336,"backlog":0,"expected_sla_breaches":13})")));
  RunResult text = testing::Run({AGATE_CLI_BIN, "shadow", "--live", kBundled, "--candidate",
                                 candidate, "--requests", requests, "--span", "24h"});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, AllOf(StartsWith("10 requests: 3 changed verdict (30.0%)\n"),
                              HasSubstr("workload forecast over 24h")));
}

TEST_F(PolicyCliTest, ShadowFileErrorsExitTwo) {
  const std::string good = Write("good.jsonl", R"({"request_id":"a","tenant_id":"t"})"
                                               "\n");
  const std::string bad = Write("bad.jsonl", R"({"request_id":"a","tenant_id":"t"})"
                                             "\n{oops\n");
  const std::string broken =
      Write("broken.yaml", "version: 1\nlanes:\n  a: {owner: o, sla: 30x}\n");
  RunResult r = testing::Run(
      {AGATE_CLI_BIN, "shadow", "--live", kBundled, "--candidate", kBundled, "--requests", bad});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, StartsWith(absl::StrCat(bad, ":2: not an EvaluateRequest in JSON: ")));
  r = testing::Run(
      {AGATE_CLI_BIN, "shadow", "--live", kBundled, "--candidate", broken, "--requests", good});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err,
              AllOf(StartsWith(absl::StrCat(
                        broken, ":1:1: error: the matrix: missing required key 'triggers'")),
                    HasSubstr(absl::StrCat(broken, ":3:22: error: invalid duration '30x'"))));
  r = testing::Run({AGATE_CLI_BIN, "shadow", "--live", kBundled, "--candidate", kBundled,
                    "--requests", dir_.path() + "/nope.jsonl"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("nope.jsonl: error: cannot read: No such file or directory"));
  r = testing::Run({AGATE_CLI_BIN, "shadow", "--live", kBundled, "--requests", good});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("shadow needs --candidate FILE"));
  EXPECT_THAT(testing::Run({AGATE_CLI_BIN, "help"}).out,
              AllOf(HasSubstr("test  [--junit FILE]"), HasSubstr("shadow --live FILE")));
}

}  // namespace
}  // namespace agate::testing
