// MatrixReloader: good swaps, failed reloads that keep the old matrix (every error logged), a
// deleted file, the watcher's debounce, and cases opened before a reload.
#include "server/matrix_reloader.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "engine/matrix.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "service/service.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"
#include "tests/testing/reload_matrices.h"

namespace agate::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;

// Two valid matrices that disagree about a $200 refund and about who owns the lane.
const std::string kV1 = ::agate::testing::ReloadMatrix("1", /*strict=*/false);
const std::string kV2 = ::agate::testing::ReloadMatrix("2", /*strict=*/true);
// Four errors, two on one line.
constexpr char kBroken[] =
    "version: 3\nlanes:\n  customer: {owner: a, sla: 30x, verdict: HOLDD}\n"
    "triggers:\n  - {id: t, lane: custom, when: action.nope > 1}\n";

v1::EvaluateRequest Refund(const std::string& item, double amount) {
  v1::EvaluateRequest r;
  r.set_request_id(absl::StrCat("r-", item, "-", amount));
  r.set_tenant_id("t1");
  r.set_workflow_id("refunds");
  r.set_item_id(item);
  r.mutable_action()->set_type("refund");
  r.mutable_action()->set_amount(amount);
  return r;
}

class MatrixReloaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/agate-reload-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/matrix.yaml";
    Write(kV1);
    absl::StatusOr<std::shared_ptr<const engine::Matrix>> m =
        engine::LoadMatrixFile(path_, nullptr);
    ASSERT_TRUE(m.ok()) << m.status();
    service_ = *service::Service::Create(*m);
    reloader_ = std::make_unique<MatrixReloader>(path_, *service_);
    // Capture the log.
    previous_logger_ = spdlog::default_logger();
    auto logger = std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log_));
    logger->set_pattern("[%l] %v");
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  void TearDown() override {
    reloader_.reset();
    spdlog::set_default_logger(previous_logger_);
    std::filesystem::remove_all(dir_);
  }

  // Write replaces the file in place (same inode).
  void Write(const std::string& text) { std::ofstream(path_, std::ios::trunc) << text; }
  // Replace writes a new file and renames it over the old one, as editors do.
  void Replace(const std::string& text) {
    const std::string tmp = path_ + ".tmp";
    std::ofstream(tmp, std::ios::trunc) << text;
    ASSERT_EQ(rename(tmp.c_str(), path_.c_str()), 0);
  }
  std::string version() const { return service_->matrix()->version(); }
  v1::Verdict VerdictFor(const v1::EvaluateRequest& request) {
    v1::EvaluateResponse response;
    EXPECT_TRUE(service_->Evaluate(request, &response).ok());
    return response.verdict();
  }

  std::string dir_, path_;
  std::ostringstream log_;
  std::unique_ptr<service::Service> service_;
  std::unique_ptr<MatrixReloader> reloader_;
  std::shared_ptr<spdlog::logger> previous_logger_;
};

TEST_F(MatrixReloaderTest, ReloadSwapsInAGoodMatrixAndLogsBothVersions) {
  EXPECT_EQ(VerdictFor(Refund("i1", 200)), v1::VERDICT_ALLOW);
  Replace(kV2);
  ASSERT_TRUE(reloader_->Reload().ok());
  EXPECT_EQ(version(), "2");
  EXPECT_EQ(VerdictFor(Refund("i2", 200)), v1::VERDICT_BLOCK);
  EXPECT_THAT(log_.str(), HasSubstr(absl::StrCat("[info] reloaded matrix ", path_,
                                                 ": version 1 -> 2 (1 lanes, 1 triggers)")));
}

TEST_F(MatrixReloaderTest, AFailedReloadKeepsTheOldMatrixAndReportsEveryError) {
  Write(kBroken);
  const absl::Status status = reloader_->Reload();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  const std::string errors[] = {
      path_ + ":3:29: error: invalid duration '30x'",
      path_ + ":3:43: error: unknown verdict 'HOLDD'",
      path_ + ":5:19: error: unknown lane 'custom'",
      path_ + ":5:33: error: unknown field 'nope' in action",
  };
  for (const std::string& e : errors) {
    EXPECT_THAT(std::string(status.message()), HasSubstr(e));
    EXPECT_THAT(log_.str(), HasSubstr("[error] " + e));
  }
  EXPECT_THAT(log_.str(), HasSubstr(absl::StrCat("[error] matrix reload failed: ", path_,
                                                 " has 4 errors; still serving version 1")));
  EXPECT_EQ(version(), "1");
  EXPECT_EQ(VerdictFor(Refund("i1", 300)), v1::VERDICT_BLOCK);
}

TEST_F(MatrixReloaderTest, AnEmptyOrTruncatedFileKeepsTheOldMatrix) {
  Write("");
  absl::Status status = reloader_->Reload();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr(path_ + ":1:1: error: the matrix is empty"));
  // Cut in the middle of a flow mapping, as a writer caught half-way leaves it.
  Write(kV2.substr(0, kV2.find("sla:")));
  status = reloader_->Reload();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr(path_ + ":"));
  EXPECT_THAT(log_.str(), HasSubstr("[error] " + path_ + ":"));
  EXPECT_EQ(version(), "1");
}

TEST_F(MatrixReloaderTest, AMissingOrUnreadableFileKeepsTheOldMatrix) {
  ASSERT_EQ(unlink(path_.c_str()), 0);
  absl::Status status = reloader_->Reload();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr(path_ + ": error: cannot read: No such file or directory"));
  EXPECT_THAT(log_.str(), HasSubstr("[error] " + path_ + ": error: cannot read"));
  EXPECT_THAT(log_.str(), HasSubstr("still serving version 1"));
  // A directory where the file was (unreadable as a matrix, even for root).
  ASSERT_EQ(mkdir(path_.c_str(), 0700), 0);
  status = reloader_->Reload();
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr(path_ + ": error: cannot read"));
  EXPECT_EQ(version(), "1");
  EXPECT_EQ(VerdictFor(Refund("i1", 300)), v1::VERDICT_BLOCK);
}

TEST_F(MatrixReloaderTest, PollReloadsOnlyOnceTheChangedFileStaysTheSameForTwoPolls) {
  EXPECT_EQ(reloader_->Poll(), std::nullopt) << "unchanged";
  Write(kV2);
  EXPECT_EQ(reloader_->Poll(), std::nullopt) << "changed: wait one more poll";
  EXPECT_EQ(version(), "1");
  EXPECT_THAT(reloader_->Poll(), Optional(absl::OkStatus())) << "settled: reload";
  EXPECT_EQ(version(), "2");
  EXPECT_EQ(reloader_->Poll(), std::nullopt) << "loaded: nothing to do";

  // A writer still at work: every poll sees a different file, so nothing is loaded.
  const std::string v3 = absl::StrReplaceAll(kV2, {{"version: 2", "version: 3"}});
  Write(v3.substr(0, 40));
  EXPECT_EQ(reloader_->Poll(), std::nullopt);
  Write(v3.substr(0, 120));
  EXPECT_EQ(reloader_->Poll(), std::nullopt);
  Write(v3);
  EXPECT_EQ(reloader_->Poll(), std::nullopt);
  EXPECT_THAT(reloader_->Poll(), Optional(absl::OkStatus()));
  EXPECT_EQ(version(), "3");
  EXPECT_THAT(log_.str(), Not(HasSubstr("[error]")));
}

TEST_F(MatrixReloaderTest, PollReportsABadFileOnceAndLoadsItsFix) {
  Write(kBroken);
  EXPECT_EQ(reloader_->Poll(), std::nullopt);
  std::optional<absl::Status> failed = reloader_->Poll();
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(failed->code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reloader_->Poll(), std::nullopt) << "the same bad file is not reloaded again";
  EXPECT_EQ(reloader_->Poll(), std::nullopt);
  Replace(kV2);
  EXPECT_EQ(reloader_->Poll(), std::nullopt);
  EXPECT_THAT(reloader_->Poll(), Optional(absl::OkStatus()));
  EXPECT_EQ(version(), "2");
}

TEST_F(MatrixReloaderTest, PollNoticesADeletedFileAndLoadsItWhenItComesBack) {
  ASSERT_EQ(unlink(path_.c_str()), 0);
  EXPECT_EQ(reloader_->Poll(), std::nullopt);
  std::optional<absl::Status> missing = reloader_->Poll();
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(reloader_->Poll(), std::nullopt) << "reported once";
  EXPECT_EQ(version(), "1");
  Replace(kV2);
  EXPECT_EQ(reloader_->Poll(), std::nullopt);
  EXPECT_THAT(reloader_->Poll(), Optional(absl::OkStatus()));
  EXPECT_EQ(version(), "2");
}

TEST_F(MatrixReloaderTest, PollNoticesAFileReplacedByRenameWithTheSameSizeAndMtime) {
  // Same length as kV1 and the same mtime: the inode (and ctime) tell the files apart.
  const std::string same_size = absl::StrReplaceAll(kV1, {{"version: 1", "version: 7"}});
  ASSERT_EQ(same_size.size(), kV1.size());
  struct stat before;
  ASSERT_EQ(stat(path_.c_str(), &before), 0);
  Replace(same_size);
  const timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(utimensat(AT_FDCWD, path_.c_str(), times, 0), 0);
  EXPECT_EQ(reloader_->Poll(), std::nullopt);
  EXPECT_THAT(reloader_->Poll(), Optional(absl::OkStatus()));
  EXPECT_EQ(version(), "7");
}

TEST_F(MatrixReloaderTest, AReloadOnSignalIsNotRepeatedByTheWatcher) {
  Replace(kV2);
  ASSERT_TRUE(reloader_->Reload().ok());
  EXPECT_EQ(reloader_->Poll(), std::nullopt);
  EXPECT_EQ(reloader_->Poll(), std::nullopt);
  const std::vector<std::string> parts = absl::StrSplit(log_.str(), "reloaded matrix");
  EXPECT_EQ(parts.size(), 2u) << "one reload logged: " << log_.str();
}

TEST_F(MatrixReloaderTest, TheWatcherThreadReloadsAChangedFile) {
  reloader_->Start(absl::Milliseconds(10));
  Replace(kV2);
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (version() != "2" && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(version(), "2");
  reloader_->Stop();
}

TEST_F(MatrixReloaderTest, CasesOpenedBeforeAReloadKeepTheirLane) {
  auto open = [&](const std::string& item) {
    v1::EvaluateResponse response;
    EXPECT_TRUE(service_->Evaluate(Refund(item, 400), &response).ok());
    EXPECT_EQ(response.verdict(), v1::VERDICT_BLOCK);
    return response;
  };
  auto ack = [&](const std::string& id, const std::string& approver) {
    return service_->Acknowledge({.case_id = id,
                                  .decision = v1::DECISION_APPROVE,
                                  .actor = cases::Actor::Unverified(approver),
                                  .comment = ""});
  };
  const v1::EvaluateResponse before_1 = open("i1");
  const v1::EvaluateResponse before_2 = open("i2");
  EXPECT_EQ(before_1.owner(), "alice");
  Replace(kV2);  // the lane's owner is carol now
  ASSERT_TRUE(reloader_->Reload().ok());

  // The old cases keep the owner they were opened with.
  EXPECT_TRUE(ack(before_1.case_id(), "alice").ok());
  EXPECT_EQ(ack(before_2.case_id(), "carol").status().code(), absl::StatusCode::kPermissionDenied);
  // New cases get the new lane's owner.
  const v1::EvaluateResponse after = open("i3");
  EXPECT_EQ(after.owner(), "carol");
  EXPECT_EQ(after.matrix_version(), "2");
  EXPECT_EQ(ack(after.case_id(), "alice").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(ack(after.case_id(), "carol").ok());
}

TEST_F(MatrixReloaderTest, StatsReportTheServingVersion) {
  EXPECT_EQ(service_->Stats().matrix_version(), "1");
  Replace(kV2);
  ASSERT_TRUE(reloader_->Reload().ok());
  EXPECT_EQ(service_->Stats().matrix_version(), "2");
}

}  // namespace
}  // namespace agate::server
