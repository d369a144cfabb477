// `agate verify-log DIR`, run as the built binary.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/decision_log.h"
#include "tests/testing/process.h"

namespace agate::store {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

class VerifyLogCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() /
            absl::StrCat("agate_verify_cli_", ::getpid(), "_", absl::ToUnixNanos(absl::Now())))
               .string();
    absl::StatusOr<std::unique_ptr<DecisionLog>> log =
        DecisionLog::Open({.dir = dir_, .rotate_bytes = 400});
    ASSERT_TRUE(log.ok()) << log.status();
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE((*log)->Append(absl::StrCat(R"("verdict":"ALLOW","i":)", i), true).ok());
    }
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(VerifyLogCliTest, IntactLogExitsZero) {
  testing::RunResult r = testing::Run({AGATE_CLI_BIN, "verify-log", dir_});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith(absl::StrCat("verify-log: ", dir_,
                                             ": 5 records in 2 files, chain intact\n")));
  EXPECT_THAT(r.out, MatchesRegex(".*\nverify-log: head seq 5 hash [0-9a-f]{64}\n"));
}

TEST_F(VerifyLogCliTest, RemovedOldFileIsReportedAsTheAnchor) {
  fs::remove(dir_ + "/decisions-000001.jsonl");
  testing::RunResult r = testing::Run({AGATE_CLI_BIN, "verify-log", dir_});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out,
              HasSubstr(absl::StrCat(": 2 records in 1 file, chain intact; it starts at ", dir_,
                                     "/decisions-000002.jsonl:1 (seq 4): older files "
                                     "were removed\n")));
}

TEST_F(VerifyLogCliTest, TamperedLogPrintsTheBreakAndExitsOne) {
  const std::string path = dir_ + "/decisions-000001.jsonl";
  std::stringstream content;
  content << std::ifstream(path).rdbuf();
  std::string text = content.str();
  text.replace(text.find("\"i\":1"), 5, "\"i\":7");
  std::ofstream(path, std::ios::trunc) << text;
  testing::RunResult r = testing::Run({AGATE_CLI_BIN, "verify-log", dir_});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, StartsWith(path + ":2: hash mismatch: the record was altered"));
}

TEST_F(VerifyLogCliTest, UsageErrorsExitTwoAndMissingDirectoryOne) {
  EXPECT_EQ(testing::Run({AGATE_CLI_BIN, "verify-log"}).exit_code, 2);
  EXPECT_EQ(testing::Run({AGATE_CLI_BIN, "verify-log", dir_, dir_}).exit_code, 2);
  EXPECT_EQ(testing::Run({AGATE_CLI_BIN, "verify-log", "--bogus", dir_}).exit_code, 2);
  testing::RunResult missing = testing::Run({AGATE_CLI_BIN, "verify-log", dir_ + "/nope"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("agate: NOT_FOUND: decision log: " + dir_ + "/nope"));
  EXPECT_THAT(testing::Run({AGATE_CLI_BIN, "help"}).out, HasSubstr("verify-log DIR"));
}

}  // namespace
}  // namespace agate::store
