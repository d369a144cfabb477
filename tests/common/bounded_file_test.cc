#include "common/bounded_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agate {
namespace {

using ::testing::HasSubstr;

class BoundedFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "bounded_file_" + std::to_string(::getpid());
    ::mkdir(dir_.c_str(), 0700);
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::string dir_;
};

TEST_F(BoundedFileTest, ReadsAFileUpToTheLimit) {
  EXPECT_EQ(*ReadBoundedFile(Write("a", "abc"), 3), "abc");
  EXPECT_EQ(*ReadBoundedFile(Write("empty", ""), 3), "");
}

TEST_F(BoundedFileTest, AFileOverTheLimitIsOutOfRangeWithItsSize) {
  const absl::StatusOr<std::string> text =
      ReadBoundedFile(Write("big", std::string(3 << 20, 'x')), 2 << 20);
  EXPECT_EQ(text.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(text.status().message(), "larger than 2 MiB (3145728 bytes)");
}

TEST_F(BoundedFileTest, APipeThatSaysNoSizeIsStillBounded) {
  const std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::thread writer([&] { std::ofstream(fifo) << std::string(5000, 'x'); });
  const absl::StatusOr<std::string> text = ReadBoundedFile(fifo, 4096);
  writer.join();
  EXPECT_EQ(text.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(text.status().message(), "larger than 4096 bytes");
}

TEST_F(BoundedFileTest, APipeOfManyPagesIsReadWhole) {
  const std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::thread writer([&] { std::ofstream(fifo) << std::string(100'000, 'x'); });
  const absl::StatusOr<std::string> text = ReadBoundedFile(fifo, 1 << 20);
  writer.join();
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, std::string(100'000, 'x'));
}

TEST_F(BoundedFileTest, MissingFilesAndDirectoriesSayWhy) {
  EXPECT_THAT(ReadBoundedFile(dir_ + "/missing", 10).status(),
              ::testing::Property(&absl::Status::message, HasSubstr("cannot read: No such file")));
  EXPECT_EQ(ReadBoundedFile(dir_ + "/missing", 10).status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(ReadBoundedFile(dir_, 10).status().message()),
              HasSubstr("cannot read: Is a directory"));
}

}  // namespace
}  // namespace agate
