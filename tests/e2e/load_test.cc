// End to end: agate-load (bench/agate_load.cc) against the real agate-server. The load generator's
// numbers are only worth what its checks are: every status and verdict is counted, mismatches
// and errors make it exit 1, and its limits are enforced.
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"

namespace agate {
namespace {

using ::agate::testing::RunResult;
using ::agate::testing::ServerProcess;
using ::testing::HasSubstr;

constexpr char kMatrix[] = AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml";
constexpr char kMix[] = AGATE_SOURCE_DIR "/bench/mixes/support.jsonl";

// Report is agate-load's --json output.
google::protobuf::Struct Report(const RunResult& r) {
  google::protobuf::Struct report;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &report).ok()) << r.out << r.err;
  return report;
}

double Number(const google::protobuf::Struct& s, const std::string& name) {
  auto it = s.fields().find(name);
  return it == s.fields().end() ? -1 : it->second.number_value();
}

const google::protobuf::Struct& Object(const google::protobuf::Struct& s, const std::string& name) {
  auto it = s.fields().find(name);
  return it == s.fields().end() ? google::protobuf::Struct::default_instance()
                                : it->second.struct_value();
}

class LoadE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_ = "unix:" + dir_.path() + "/agate.sock";
    ASSERT_TRUE(server_.Start(AGATE_SERVER_BIN, {"--matrix", kMatrix, "--listen", socket_}))
        << server_.log();
  }
  RunResult Load(std::vector<std::string> args) {
    args.insert(args.begin(), {AGATE_LOAD_BIN, "--target", socket_});
    return testing::Run(args, "", absl::Seconds(60));
  }

  testing::TempDir dir_;
  std::string socket_;
  ServerProcess server_;
};

TEST_F(LoadE2eTest, ClosedLoopCountsEveryVerdictOfTheMixAndExitsZero) {
  const RunResult r = Load({"--concurrency", "32", "--requests", "3000", "--mix", kMix, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const google::protobuf::Struct report = Report(r);
  EXPECT_EQ(Number(report, "requests"), 3000);
  EXPECT_EQ(Number(report, "ok"), 3000);
  EXPECT_EQ(Number(report, "mismatches"), 0);
  EXPECT_TRUE(Object(report, "errors").fields().empty()) << r.out;
  double verdicts = 0;
  for (const auto& [name, n] : Object(report, "verdicts").fields()) verdicts += n.number_value();
  EXPECT_EQ(verdicts, 3000);
  // The mix is 90% ALLOW; 3,000 draws give every one of its four verdicts.
  for (const char* v : {"VERDICT_ALLOW", "VERDICT_HOLD", "VERDICT_BLOCK", "VERDICT_DENY"}) {
    EXPECT_GT(Number(Object(report, "verdicts"), v), 0) << v << " in " << r.out;
  }
  EXPECT_GT(Number(report, "rps"), 0);
  EXPECT_GT(Number(Object(report, "latency_us"), "p99"), 0);
}

TEST_F(LoadE2eTest, AWrongVerdictAndARefusedRequestAreCountedAndFailTheRun) {
  const std::string mix = dir_.path() + "/mix.jsonl";
  std::ofstream(mix)
      << R"({"weight": 1, "expect": "VERDICT_ALLOW", "request": {"request_id": "r", )"
         R"("tenant_id": "t1", "workflow_id": "w", "item_id": "i", )"
         R"("action": {"type": "refund", "amount": 400}}})"
      << "\n"
      << R"({"weight": 1, "request": {"request_id": "bad", "tenant_id": "t1", )"
         R"("model": {"confidence": 1.5}}})"
      << "\n";
  const RunResult r = Load({"--concurrency", "4", "--requests", "400", "--mix", mix, "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  const google::protobuf::Struct report = Report(r);
  EXPECT_EQ(Number(report, "requests"), 400);
  const double blocked = Number(Object(report, "verdicts"), "VERDICT_BLOCK");
  const double refused = Number(Object(report, "errors"), "INVALID_ARGUMENT");
  EXPECT_GT(blocked, 0);
  EXPECT_GT(refused, 0);
  EXPECT_EQ(blocked + refused, 400);
  EXPECT_EQ(Number(report, "mismatches"), blocked);  // expected ALLOW, got BLOCK
}

TEST_F(LoadE2eTest, OpenLoopNeverSendsAheadOfItsSchedule) {
  const RunResult r = Load({"--rate", "400", "--duration", "2s", "--concurrency", "8", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const google::protobuf::Struct report = Report(r);
  // 400 req/s for 2 s: at most 800 scheduled sends (fewer if the machine is slow).
  EXPECT_GT(Number(report, "requests"), 0);
  EXPECT_LE(Number(report, "requests"), 800);
  EXPECT_THAT(r.err, HasSubstr("agate-load: t=1s ")) << "a progress line each second";
  EXPECT_EQ(Number(report, "mismatches"), 0);
}

TEST(LoadCommandLineTest, RefusesNonLoopbackTargetsAndOutOfRangeFlags) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--target", "10.1.2.3:7878"}, "--target must be a loopback address or unix:PATH"},
      {{}, "--target is required"},
      {{"--target", "127.0.0.1:1", "--concurrency", "0"}, "--concurrency must be in [1, 10000]"},
      {{"--target", "127.0.0.1:1", "--connections", "65"}, "--connections must be in [1, 64]"},
      {{"--target", "127.0.0.1:1", "--duration", "2h"}, "--duration is at most 1h"},
      {{"--target", "127.0.0.1:1", "--mix", "/nonexistent.jsonl"}, "--mix: cannot read"},
  };
  for (const auto& [args, message] : cases) {
    std::vector<std::string> argv = {AGATE_LOAD_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    const RunResult r = testing::Run(argv);
    EXPECT_EQ(r.exit_code, 2) << message;
    EXPECT_THAT(r.err, HasSubstr(message));
  }
}

}  // namespace
}  // namespace agate
