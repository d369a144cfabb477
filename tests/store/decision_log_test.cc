#include "store/decision_log.h"

#include <fcntl.h>
#include <openssl/sha.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace agate::store {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

using testing::StatusIs;

const std::string kGenesis(64, '0');

std::string TempDir(absl::string_view name) {
  const fs::path p =
      fs::temp_directory_path() / absl::StrCat("agate_decision_log_", name, "_", ::getpid(), "_",
                                               absl::ToUnixNanos(absl::Now()));
  fs::remove_all(p);
  return p.string();
}

std::string FileOf(const std::string& dir, int index) {
  char name[64];
  std::snprintf(name, sizeof(name), "/decisions-%06d.jsonl", index);
  return dir + name;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

std::vector<std::string> Lines(const std::string& path) {
  std::vector<std::string> lines = absl::StrSplit(ReadFile(path), '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

void WriteLines(const std::string& path, const std::vector<std::string>& lines) {
  std::string content;
  for (const std::string& l : lines) absl::StrAppend(&content, l, "\n");
  WriteFile(path, content);
}

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  std::string hex;
  for (unsigned char b : digest) absl::StrAppend(&hex, absl::Hex(b, absl::kZeroPad2));
  return hex;
}

std::unique_ptr<DecisionLog> OpenOrDie(DecisionLogOptions options) {
  absl::StatusOr<std::unique_ptr<DecisionLog>> log = DecisionLog::Open(std::move(options));
  EXPECT_TRUE(log.ok()) << log.status();
  return log.ok() ? *std::move(log) : nullptr;
}

// Writes n records {"i":first..} with sync appends.
void AppendN(DecisionLog& log, int first, int n) {
  for (int i = first; i < first + n; ++i) {
    ASSERT_TRUE(log.Append(absl::StrCat("\"i\":", i), /*sync=*/true).ok());
  }
}

class DecisionLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = TempDir(info->name());
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

// --- the line format -------------------------------------------------------------------------

TEST_F(DecisionLogTest, WritesTheDocumentedLineFormat) {
  {
    auto log = OpenOrDie({.dir = dir_});
    ASSERT_TRUE(log->Append(R"("verdict":"ALLOW","request_id":"r1")", true).ok());
    ASSERT_TRUE(log->Append(R"("verdict":"DENY")", true).ok());
  }
  const std::vector<std::string> lines = Lines(FileOf(dir_, 1));
  ASSERT_EQ(lines.size(), 2u);
  // Recompute every hash from the documented definition, independently of the log's code.
  const std::string first_hashed =
      absl::StrCat(R"({"seq":1,"verdict":"ALLOW","request_id":"r1","prev":")", kGenesis, "\"");
  const std::string h1 = Sha256Hex(first_hashed);
  EXPECT_EQ(lines[0], absl::StrCat(first_hashed, R"(,"hash":")", h1, "\"}"));
  const std::string second_hashed = absl::StrCat(R"({"seq":2,"verdict":"DENY","prev":")", h1, "\"");
  EXPECT_EQ(lines[1], absl::StrCat(second_hashed, R"(,"hash":")", Sha256Hex(second_hashed), "\"}"));

  absl::StatusOr<VerifyResult> v = VerifyLog(dir_);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->files, 1u);
  EXPECT_EQ(v->records, 2u);
  EXPECT_EQ(v->anchor, "");
  EXPECT_EQ(v->last_seq, 2u);
  EXPECT_EQ(v->head, Sha256Hex(second_hashed));
}

TEST_F(DecisionLogTest, RejectsABodyWithANewline) {
  auto log = OpenOrDie({.dir = dir_});
  EXPECT_THAT(log->Append("\"a\":\"x\ny\"", false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("newline")));
}

TEST_F(DecisionLogTest, AnEmptyBodyStillMakesAValidRecord) {
  {
    auto log = OpenOrDie({.dir = dir_});
    ASSERT_TRUE(log->Append("", true).ok());
  }
  EXPECT_THAT(Lines(FileOf(dir_, 1))[0], StartsWith(R"({"seq":1,"prev":")"));
  ASSERT_TRUE(VerifyLog(dir_).ok());
}

// --- rotation and reopening ------------------------------------------------------------------

TEST_F(DecisionLogTest, ChainContinuesAcrossRotation) {
  {
    auto log = OpenOrDie({.dir = dir_, .rotate_bytes = 400});
    AppendN(*log, 0, 20);
    const DecisionLog::Stats s = log->stats();
    EXPECT_EQ(s.records, 20u);
    EXPECT_GE(s.files, 3u);
  }
  absl::StatusOr<VerifyResult> v = VerifyLog(dir_);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->records, 20u);
  EXPECT_GE(v->files, 3u);
  // Every file but the last ends with the record that took it past 400 bytes.
  for (uint64_t i = 1; i < v->files; ++i) {
    const std::string content = ReadFile(FileOf(dir_, static_cast<int>(i)));
    EXPECT_GE(content.size(), 400u) << i;
    const size_t before_last = content.rfind('\n', content.size() - 2);
    EXPECT_LT(before_last + 1, 400u) << i;
  }
  EXPECT_THAT(Lines(FileOf(dir_, 2))[0], StartsWith(R"({"seq":)"));
}

TEST_F(DecisionLogTest, RetentionKeepsTheNewestFilesAndTheRestStillVerifies) {
  {
    auto log = OpenOrDie({.dir = dir_, .rotate_bytes = 400, .max_files = 2});
    AppendN(*log, 0, 40);
  }
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    names.push_back(entry.path().filename().string());
  }
  EXPECT_EQ(names.size(), 2u);
  EXPECT_FALSE(fs::exists(FileOf(dir_, 1)));
  absl::StatusOr<VerifyResult> v = VerifyLog(dir_);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->files, 2u);
  EXPECT_EQ(v->last_seq, 40u);
  EXPECT_THAT(v->anchor, HasSubstr("decisions-"));  // older files were removed
}

TEST_F(DecisionLogTest, ReadRecentRecordsGoesNewestFirstAcrossFilesAndStopsWhenAsked) {
  {
    auto log = OpenOrDie({.dir = dir_, .rotate_bytes = 400});
    AppendN(*log, 0, 20);
  }
  // A torn last line (a crash in the middle of a write) is skipped.
  std::ofstream(FileOf(dir_, static_cast<int>(VerifyLog(dir_)->files)), std::ios::app)
      << "{\"seq\":21,\"i\":";
  std::vector<int> seen;
  ASSERT_TRUE(ReadRecentRecords(dir_, [&](absl::string_view line) {
                const size_t at = line.find("\"i\":");
                seen.push_back(std::stoi(std::string(line.substr(at + 4))));
                return true;
              }).ok());
  ASSERT_EQ(seen.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(seen[i], 19 - i);
  int visited = 0;
  ASSERT_TRUE(ReadRecentRecords(dir_, [&](absl::string_view) { return ++visited < 5; }).ok());
  EXPECT_EQ(visited, 5);
  EXPECT_FALSE(ReadRecentRecords(dir_ + "/missing", [](absl::string_view) { return true; }).ok());
}

TEST_F(DecisionLogTest, ChainContinuesAcrossReopen) {
  {
    auto log = OpenOrDie({.dir = dir_});
    AppendN(*log, 0, 5);
  }
  {
    auto log = OpenOrDie({.dir = dir_});
    AppendN(*log, 5, 5);
    EXPECT_EQ(log->stats().files, 1u);  // appends to the same file
  }
  const std::vector<std::string> lines = Lines(FileOf(dir_, 1));
  ASSERT_EQ(lines.size(), 10u);
  EXPECT_THAT(lines[5], StartsWith(R"({"seq":6,"i":5,)"));
  absl::StatusOr<VerifyResult> v = VerifyLog(dir_);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->records, 10u);
}

TEST_F(DecisionLogTest, ReopenStartsTheNextFileWhenTheNewestIsFull) {
  {
    auto log = OpenOrDie({.dir = dir_, .rotate_bytes = 100});
    AppendN(*log, 0, 1);  // 1 record > 100 bytes: file 1 is full, closed on write
  }
  {
    auto log = OpenOrDie({.dir = dir_, .rotate_bytes = 100});
    AppendN(*log, 1, 1);
  }
  EXPECT_EQ(Lines(FileOf(dir_, 1)).size(), 1u);
  ASSERT_EQ(Lines(FileOf(dir_, 2)).size(), 1u);
  EXPECT_THAT(Lines(FileOf(dir_, 2))[0], StartsWith(R"({"seq":2,)"));
  ASSERT_TRUE(VerifyLog(dir_).ok());
}

TEST_F(DecisionLogTest, OpenTruncatesATornLastLine) {
  {
    auto log = OpenOrDie({.dir = dir_});
    AppendN(*log, 0, 3);
  }
  const std::string path = FileOf(dir_, 1);
  const std::string intact = ReadFile(path);
  WriteFile(path, intact + R"({"seq":4,"i":3,"pre)");  // a crash in the middle of a write
  EXPECT_THAT(VerifyLog(dir_), StatusIs(absl::StatusCode::kDataLoss,
                                        HasSubstr("decisions-000001.jsonl:4: torn last line")));
  {
    auto log = OpenOrDie({.dir = dir_});
    EXPECT_EQ(ReadFile(path), intact);
    AppendN(*log, 3, 1);
  }
  const std::vector<std::string> lines = Lines(path);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_THAT(lines[3], StartsWith(R"({"seq":4,"i":3,)"));
  absl::StatusOr<VerifyResult> v = VerifyLog(dir_);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->records, 4u);
}

TEST_F(DecisionLogTest, OpenRecoversTheHeadFromAnOlderFileWhenTheNewestIsEmpty) {
  {
    auto log = OpenOrDie({.dir = dir_, .rotate_bytes = 100});
    AppendN(*log, 0, 2);  // two files of one record each
  }
  WriteFile(FileOf(dir_, 3), R"({"seq":3,"i)");  // created, then a torn first write
  {
    auto log = OpenOrDie({.dir = dir_});
    AppendN(*log, 2, 1);
  }
  ASSERT_EQ(Lines(FileOf(dir_, 3)).size(), 1u);
  EXPECT_THAT(Lines(FileOf(dir_, 3))[0], StartsWith(R"({"seq":3,"i":2,)"));
  absl::StatusOr<VerifyResult> v = VerifyLog(dir_);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->records, 3u);
  EXPECT_EQ(v->files, 3u);
}

TEST_F(DecisionLogTest, OpenRejectsANewestFileWhoseLastLineIsNotARecord) {
  {
    auto log = OpenOrDie({.dir = dir_});
    AppendN(*log, 0, 2);
  }
  const std::string path = FileOf(dir_, 1);
  std::vector<std::string> lines = Lines(path);
  lines[1][13] = '9';  // "i":1 -> "i":9: the hash no longer matches
  WriteLines(path, lines);
  EXPECT_THAT(DecisionLog::Open({.dir = dir_}),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr(path + ": last line is not a decision record: hash mismatch")));
  WriteFile(path, "not json\n");
  EXPECT_THAT(DecisionLog::Open({.dir = dir_}),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr(path + ": last line is not a decision record: not a decision "
                                        "record (no {\"seq\": at the start)")));
}

// --- Open errors -----------------------------------------------------------------------------

TEST_F(DecisionLogTest, OpenFailsWhenTheDirectoryCannotBeCreated) {
  fs::create_directories(dir_);
  WriteFile(dir_ + "/file", "x");
  EXPECT_THAT(DecisionLog::Open({.dir = dir_ + "/file/decisions"}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("cannot create directory " + dir_ + "/file/decisions")));
  EXPECT_THAT(DecisionLog::Open({.dir = ""}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dir is required")));
  EXPECT_THAT(DecisionLog::Open({.dir = dir_, .rotate_bytes = 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("must be positive")));
}

TEST_F(DecisionLogTest, OpenFailsOnAnUnreadableFile) {
  fs::create_directories(FileOf(dir_, 1));  // a directory where a log file should be
  absl::StatusOr<std::unique_ptr<DecisionLog>> log = DecisionLog::Open({.dir = dir_});
  ASSERT_FALSE(log.ok());
  EXPECT_THAT(std::string(log.status().message()), HasSubstr(FileOf(dir_, 1) + ": Is a directory"));
}

TEST_F(DecisionLogTest, OpenFailsWhenTheDirectoryIsNotWritable) {
  fs::create_directories(dir_);
  // Root writes anywhere, except on a read-only file system.
  if (::mount("tmpfs", dir_.c_str(), "tmpfs", MS_RDONLY, "size=64k") != 0) {
    GTEST_SKIP() << "cannot mount a read-only tmpfs (" << std::strerror(errno) << ")";
  }
  EXPECT_THAT(
      DecisionLog::Open({.dir = dir_}),
      StatusIs(absl::StatusCode::kPermissionDenied,
               HasSubstr("decision log: open " + FileOf(dir_, 1) + ": Read-only file system")));
  EXPECT_THAT(DecisionLog::Open({.dir = dir_ + "/decisions"}),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("cannot create directory " + dir_ + "/decisions")));
  ::umount2(dir_.c_str(), MNT_DETACH);
}

TEST_F(DecisionLogTest, ASecondLogCannotOpenTheSameDirectory) {
  auto log = OpenOrDie({.dir = dir_});
  EXPECT_THAT(DecisionLog::Open({.dir = dir_}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("is in use")));
  log.reset();
  EXPECT_TRUE(DecisionLog::Open({.dir = dir_}).ok());
}

// --- sync, async, Flush ----------------------------------------------------------------------

TEST_F(DecisionLogTest, AsyncAppendDoesNoIoAndIsWrittenByTheWriter) {
  auto log = OpenOrDie({.dir = dir_, .flush_interval = absl::Seconds(30)});
  ASSERT_TRUE(log->Append(R"("i":1)", false).ok());
  EXPECT_EQ(ReadFile(FileOf(dir_, 1)), "");  // queued, not written
  EXPECT_EQ(log->stats().queued, 1u);
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(Lines(FileOf(dir_, 1)).size(), 1u);
  EXPECT_EQ(log->stats().queued, 0u);
}

TEST_F(DecisionLogTest, AsyncAppendIsWrittenWithinTheFlushInterval) {
  auto log = OpenOrDie({.dir = dir_, .flush_interval = absl::Milliseconds(20)});
  const absl::Time start = absl::Now();
  ASSERT_TRUE(log->Append(R"("i":1)", false).ok());
  while (Lines(FileOf(dir_, 1)).empty() && absl::Now() - start < absl::Seconds(10)) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(Lines(FileOf(dir_, 1)).size(), 1u);
  // Generous bound for loaded CI machines; typically ~20ms.
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_F(DecisionLogTest, SyncAppendIsInTheFileWhenItReturns) {
  auto log = OpenOrDie({.dir = dir_, .flush_interval = absl::Seconds(30), .fsync = true});
  ASSERT_TRUE(log->Append(R"("i":0)", false).ok());
  ASSERT_TRUE(log->Append(R"("i":1)", true).ok());
  const std::vector<std::string> lines = Lines(FileOf(dir_, 1));
  ASSERT_EQ(lines.size(), 2u);  // the earlier async record too
  EXPECT_THAT(lines[1], StartsWith(R"({"seq":2,"i":1,)"));
}

TEST_F(DecisionLogTest, AnAppendThatFindsTheWriterFarBehindWritesItself) {
  auto log = OpenOrDie({.dir = dir_, .flush_interval = absl::Seconds(30)});  // the writer sleeps
  for (uint64_t i = 1; i < DecisionLog::kInlineWriteRecords; ++i) {
    ASSERT_TRUE(log->Append(absl::StrCat("\"i\":", i), false).ok());
  }
  EXPECT_EQ(log->stats().records, 0u);
  EXPECT_EQ(log->stats().queued, DecisionLog::kInlineWriteRecords - 1);
  ASSERT_TRUE(log->Append(R"("i":"last")", false).ok());  // finds the writer far behind
  EXPECT_EQ(log->stats().records, DecisionLog::kInlineWriteRecords);
  EXPECT_EQ(log->stats().queued, 0u);
  EXPECT_EQ(Lines(FileOf(dir_, 1)).size(), DecisionLog::kInlineWriteRecords);
  ASSERT_TRUE(VerifyLog(dir_).ok());
}

TEST_F(DecisionLogTest, TheWriterThreadRunsAtNice19) {
  auto log = OpenOrDie({.dir = dir_});
  ASSERT_TRUE(log->Append(R"("i":1)", false).ok());  // the writer has started and reniced itself
  ASSERT_TRUE(log->Flush().ok());
  int writers = 0;
  for (const fs::directory_entry& task : fs::directory_iterator("/proc/self/task")) {
    if (ReadFile((task.path() / "comm").string()) != "agate-log\n") continue;
    ++writers;
    // /proc/PID/task/TID/stat: "TID (comm) state ..." then fields; nice is the 19th field.
    const std::string stat = ReadFile((task.path() / "stat").string());
    const std::vector<std::string> fields =
        absl::StrSplit(stat.substr(stat.rfind(')') + 2), ' ', absl::SkipEmpty());
    ASSERT_GT(fields.size(), 16u);
    EXPECT_EQ(fields[16], "19") << stat;  // field 19 counted from pid; 17th after "(comm)"
  }
  EXPECT_EQ(writers, 1);
}

TEST_F(DecisionLogTest, FlushWritesEverythingAppendedSoFar) {
  auto log = OpenOrDie({.dir = dir_, .flush_interval = absl::Seconds(30)});
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(log->Append(absl::StrCat("\"i\":", i), false).ok());
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(Lines(FileOf(dir_, 1)).size(), 100u);
  ASSERT_TRUE(log->Flush().ok());  // nothing pending: returns at once
  const DecisionLog::Stats s = log->stats();
  EXPECT_EQ(s.records, 100u);
  EXPECT_EQ(s.bytes, ReadFile(FileOf(dir_, 1)).size());
  EXPECT_EQ(s.write_errors, 0u);
  EXPECT_EQ(s.dropped, 0u);
}

TEST_F(DecisionLogTest, DestructorWritesWhatIsQueued) {
  {
    auto log = OpenOrDie({.dir = dir_, .flush_interval = absl::Seconds(30)});
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(log->Append(absl::StrCat("\"i\":", i), false).ok());
  }
  EXPECT_EQ(Lines(FileOf(dir_, 1)).size(), 10u);
  ASSERT_TRUE(VerifyLog(dir_).ok());
}

TEST_F(DecisionLogTest, RefusesNewRecordsPastTheQueueBoundAndKeepsTheChainIntact) {
  auto log =
      OpenOrDie({.dir = dir_, .flush_interval = absl::Seconds(30), .max_queued_records = 10});
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(log->Append(absl::StrCat("\"i\":", i), false).ok());
  for (int i = 10; i < 50; ++i) {
    EXPECT_THAT(log->Append(absl::StrCat("\"i\":", i), i % 2 == 0),
                StatusIs(absl::StatusCode::kResourceExhausted,
                         HasSubstr("decision log: record dropped: 10 records are waiting")));
  }
  EXPECT_EQ(log->stats().dropped, 40u);
  EXPECT_EQ(log->stats().queued, 10u);
  ASSERT_TRUE(log->Flush().ok());
  // Once written, there is room again, and the next record continues the chain.
  ASSERT_TRUE(log->Append(R"("i":50)", true).ok());
  const std::vector<std::string> lines = Lines(FileOf(dir_, 1));
  ASSERT_EQ(lines.size(), 11u);
  EXPECT_THAT(lines[0], StartsWith(R"({"seq":1,"i":0,)"));  // the first ten are kept
  EXPECT_THAT(lines[9], StartsWith(R"({"seq":10,"i":9,)"));
  EXPECT_THAT(lines[10], StartsWith(R"({"seq":11,"i":50,)"));
  absl::StatusOr<VerifyResult> v = VerifyLog(dir_);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->records, 11u);
}

TEST_F(DecisionLogTest, ConcurrentAppendsFromEightThreadsAreAllChained) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 2000;
  {
    auto log = OpenOrDie({.dir = dir_, .rotate_bytes = 64 << 10});
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&log, t] {
        for (int i = 0; i < kPerThread; ++i) {
          // Every 100th append waits for the disk.
          EXPECT_TRUE(log->Append(absl::StrCat("\"t\":", t, ",\"i\":", i), i % 100 == 99).ok());
        }
      });
    }
    for (std::thread& t : threads) t.join();
    ASSERT_TRUE(log->Flush().ok());
    EXPECT_EQ(log->stats().records, uint64_t{kThreads * kPerThread});
  }
  absl::StatusOr<VerifyResult> v = VerifyLog(dir_);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->records, uint64_t{kThreads * kPerThread});
  EXPECT_GT(v->files, 1u);
  // Each thread's records are all there, once, in the order it appended them.
  std::vector<int> next(kThreads, 0);
  for (uint64_t f = 1; f <= v->files; ++f) {
    for (const std::string& line : Lines(FileOf(dir_, static_cast<int>(f)))) {
      const size_t t_at = line.find("\"t\":") + 4;
      const size_t i_at = line.find(",\"i\":") + 5;
      int t = 0, i = 0;
      ASSERT_TRUE(absl::SimpleAtoi(line.substr(t_at, line.find(',', t_at) - t_at), &t));
      ASSERT_TRUE(absl::SimpleAtoi(line.substr(i_at, line.find(',', i_at) - i_at), &i));
      ASSERT_EQ(i, next[t]) << line;
      ++next[t];
    }
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(next[t], kPerThread);
}

// --- a full disk -----------------------------------------------------------------------------

// A 64 KiB tmpfs, really full: writes fail with ENOSPC until space is freed.
class DecisionLogDiskFullTest : public DecisionLogTest {
 protected:
  void SetUp() override {
    DecisionLogTest::SetUp();
    fs::create_directories(dir_);
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=64k") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs to fill (" << std::strerror(errno)
                   << "); run as root to test a full disk";
    }
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
    DecisionLogTest::TearDown();
  }
  // Fill writes a file until the file system is full.
  void Fill() {
    const int fd = ::open((dir_ + "/filler").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    const std::string block(4096, 'x');
    while (::write(fd, block.data(), block.size()) > 0) {
    }
    ::close(fd);
  }
  bool mounted_ = false;
};

TEST_F(DecisionLogDiskFullTest, KeepsRecordsQueuedWhileTheDiskIsFullAndWritesThemLater) {
  const std::string log_dir = dir_ + "/decisions";
  auto log = OpenOrDie({.dir = log_dir, .flush_interval = absl::Milliseconds(5)});
  AppendN(*log, 0, 3);
  Fill();
  // Larger than the page the file already has: needs new blocks, which there are none of.
  const std::string big = absl::StrCat("\"i\":3,\"pad\":\"", std::string(10000, 'p'), "\"");
  EXPECT_THAT(log->Append(big, true),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("decision log: write " + FileOf(log_dir, 1) +
                                 ": No space left on device")));
  for (int i = 4; i < 8; ++i) ASSERT_TRUE(log->Append(absl::StrCat("\"i\":", i), false).ok());
  EXPECT_THAT(log->Flush(),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("No space left on device")));
  // The writer keeps retrying on its own (every 5ms), and keeps failing.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (log->stats().write_errors < 5 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  DecisionLog::Stats s = log->stats();
  EXPECT_GE(s.write_errors, 5u);
  EXPECT_EQ(s.records, 3u);
  EXPECT_EQ(s.queued, 5u);
  EXPECT_EQ(s.dropped, 0u);
  // A failed write leaves no partial record behind.
  absl::StatusOr<VerifyResult> v = VerifyLog(log_dir);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->records, 3u);

  fs::remove(dir_ + "/filler");
  ASSERT_TRUE(log->Flush().ok());
  s = log->stats();
  EXPECT_EQ(s.records, 8u);
  EXPECT_EQ(s.queued, 0u);
  v = VerifyLog(log_dir);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->records, 8u);
  const std::vector<std::string> lines = Lines(FileOf(log_dir, 1));
  ASSERT_EQ(lines.size(), 8u);
  for (int i = 0; i < 8; ++i) {
    EXPECT_THAT(lines[i], StartsWith(absl::StrCat("{\"seq\":", i + 1, ",\"i\":", i, ","))) << i;
  }
}

TEST_F(DecisionLogDiskFullTest, RefusesNewRecordsWhenTheQueueOverflowsWhileFull) {
  const std::string log_dir = dir_ + "/decisions";
  auto log =
      OpenOrDie({.dir = log_dir, .flush_interval = absl::Milliseconds(5), .max_queued_records = 4});
  AppendN(*log, 0, 1);
  Fill();
  const std::string pad(5000, 'p');
  for (int i = 1; i < 10; ++i) {
    const absl::Status s = log->Append(absl::StrCat("\"i\":", i, ",\"pad\":\"", pad, "\""), false);
    if (i <= 4) {
      EXPECT_TRUE(s.ok()) << i << ": " << s;
    } else {
      // Refused with the reason the queue does not drain.
      EXPECT_THAT(
          s, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("4 records are waiting")))
          << i;
    }
  }
  EXPECT_FALSE(log->Flush().ok());
  EXPECT_EQ(log->stats().dropped, 5u);
  fs::remove(dir_ + "/filler");
  ASSERT_TRUE(log->Flush().ok());
  const std::vector<std::string> lines = Lines(FileOf(log_dir, 1));
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_THAT(lines[1], StartsWith(R"({"seq":2,"i":1,)"));  // 5..9 were refused
  EXPECT_THAT(lines[4], StartsWith(R"({"seq":5,"i":4,)"));
  ASSERT_TRUE(VerifyLog(log_dir).ok());
}

// --- VerifyLog -------------------------------------------------------------------------------

class VerifyLogTest : public DecisionLogTest {
 protected:
  // Writes n records, rotating every rotate_bytes.
  void Write(int n, size_t rotate_bytes = 64 << 20) {
    auto log = OpenOrDie({.dir = dir_, .rotate_bytes = rotate_bytes});
    AppendN(*log, 0, n);
  }
};

TEST_F(VerifyLogTest, DetectsAnEditedByte) {
  Write(5);
  const std::string path = FileOf(dir_, 1);
  std::vector<std::string> lines = Lines(path);
  lines[2][lines[2].find("\"i\":2") + 4] = '7';  // "i":2 -> "i":7
  WriteLines(path, lines);
  EXPECT_THAT(VerifyLog(dir_),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr(path + ":3: hash mismatch: the record was altered")));
}

TEST_F(VerifyLogTest, DetectsAnEditedHash) {
  Write(5);
  const std::string path = FileOf(dir_, 1);
  std::vector<std::string> lines = Lines(path);
  char& c = lines[1][lines[1].size() - 3];
  c = c == 'a' ? 'b' : 'a';
  WriteLines(path, lines);
  EXPECT_THAT(VerifyLog(dir_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(path + ":2: hash mismatch")));
}

TEST_F(VerifyLogTest, DetectsADeletedLine) {
  Write(5);
  const std::string path = FileOf(dir_, 1);
  std::vector<std::string> lines = Lines(path);
  lines.erase(lines.begin() + 1);
  WriteLines(path, lines);
  EXPECT_THAT(VerifyLog(dir_), StatusIs(absl::StatusCode::kDataLoss,
                                        HasSubstr(path + ":2: seq 3 follows seq 1 (" + path +
                                                  ":1): a record is missing or out of order")));
}

TEST_F(VerifyLogTest, DetectsReorderedLines) {
  Write(5);
  const std::string path = FileOf(dir_, 1);
  std::vector<std::string> lines = Lines(path);
  std::swap(lines[2], lines[3]);
  WriteLines(path, lines);
  EXPECT_THAT(VerifyLog(dir_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(path + ":3: seq 4 follows seq 2")));
}

TEST_F(VerifyLogTest, DetectsAReplacedRecordWithAValidHash) {
  Write(3);
  const std::vector<std::string> original = Lines(FileOf(dir_, 1));
  // Another log's record 2: its own hash is right, but it chains to another record 1.
  const std::string other = dir_ + "/other";
  {
    auto log = OpenOrDie({.dir = other});
    ASSERT_TRUE(log->Append(R"("i":100)", true).ok());
    ASSERT_TRUE(log->Append(R"("i":1)", true).ok());
  }
  std::vector<std::string> lines = original;
  lines[1] = Lines(FileOf(other, 1))[1];
  WriteLines(FileOf(dir_, 1), lines);
  EXPECT_THAT(VerifyLog(dir_),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr(FileOf(dir_, 1) +
                                 ":2: prev does not match the hash of the previous record")));
}

TEST_F(VerifyLogTest, DetectsTheFirstRecordRemoved) {
  Write(3);
  const std::string path = FileOf(dir_, 1);
  std::vector<std::string> lines = Lines(path);
  lines.erase(lines.begin());
  WriteLines(path, lines);
  EXPECT_THAT(VerifyLog(dir_),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr(path + ":1: the first record of decisions-000001.jsonl must "
                                        "start the chain")));
}

TEST_F(VerifyLogTest, DetectsAMissingMiddleFile) {
  Write(6, 100);  // one record a file
  fs::remove(FileOf(dir_, 3));
  EXPECT_THAT(VerifyLog(dir_), StatusIs(absl::StatusCode::kDataLoss,
                                        HasSubstr(FileOf(dir_, 4) + ":1: seq 4 follows seq 2 (" +
                                                  FileOf(dir_, 2) + ":1)")));
}

TEST_F(VerifyLogTest, AcceptsRemovedOldFilesAndReportsTheAnchor) {
  Write(6, 100);
  fs::remove(FileOf(dir_, 1));
  fs::remove(FileOf(dir_, 2));
  absl::StatusOr<VerifyResult> v = VerifyLog(dir_);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->files, 4u);
  EXPECT_EQ(v->records, 4u);
  EXPECT_EQ(v->anchor, FileOf(dir_, 3) + ":1 (seq 3)");
  EXPECT_EQ(v->last_seq, 6u);
}

TEST_F(VerifyLogTest, DetectsLinesThatAreNotRecords) {
  Write(2);
  const std::string path = FileOf(dir_, 1);
  const std::vector<std::string> original = Lines(path);
  struct Case {
    std::string name, line, want;
  };
  const Case cases[] = {
      {"empty", "", ":2: empty line"},
      {"garbage", "hello", ":2: not a decision record (no {\"seq\": at the start)"},
      {"cut", original[1].substr(0, 100), ":2: not a decision record (too short)"},
      {"bad seq", "{\"seq\":x" + original[1].substr(8), ":2: not a decision record (seq is not"},
      {"no hash", original[1].substr(0, original[1].size() - 1) + " ",
       ":2: not a decision record (no \"prev\" and \"hash\" at the end)"},
  };
  for (const Case& c : cases) {
    WriteLines(path, {original[0], c.line, original[1]});
    EXPECT_THAT(VerifyLog(dir_), StatusIs(absl::StatusCode::kDataLoss, HasSubstr(path + c.want)))
        << c.name;
  }
}

TEST_F(VerifyLogTest, ReportsAMissingDirectoryOrNoFiles) {
  EXPECT_THAT(VerifyLog(dir_ + "/nope"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(dir_ + "/nope")));
  fs::create_directories(dir_);
  EXPECT_THAT(VerifyLog(dir_), StatusIs(absl::StatusCode::kNotFound,
                                        HasSubstr("no decisions-NNNNNN.jsonl files in " + dir_)));
}

TEST_F(VerifyLogTest, ReadsLinesLongerThanItsBuffer) {
  {
    auto log = OpenOrDie({.dir = dir_});
    const std::string big = absl::StrCat("\"pad\":\"", std::string(3 << 20, 'p'), "\"");
    ASSERT_TRUE(log->Append(big, true).ok());
    ASSERT_TRUE(log->Append(big, true).ok());
  }
  {
    auto log = OpenOrDie({.dir = dir_});  // recovers the head from a 3 MiB last line
    ASSERT_TRUE(log->Append(R"("i":2)", true).ok());
  }
  absl::StatusOr<VerifyResult> v = VerifyLog(dir_);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->records, 3u);
}

}  // namespace
}  // namespace agate::store
