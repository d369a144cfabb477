// The client library's contract that needs no server: which statuses mean "no answer" (the
// failure mode applies) and which are the caller's error, and option checks.
#include "client/client.h"

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agate::client {
namespace {

TEST(ClientTest, OnlyStatusesWithoutADecisionAreNoAnswer) {
  for (absl::StatusCode code :
       {absl::StatusCode::kUnavailable, absl::StatusCode::kDeadlineExceeded,
        absl::StatusCode::kResourceExhausted, absl::StatusCode::kInternal,
        absl::StatusCode::kUnknown, absl::StatusCode::kCancelled, absl::StatusCode::kAborted,
        absl::StatusCode::kUnimplemented, absl::StatusCode::kDataLoss}) {
    EXPECT_TRUE(Client::IsNoAnswer(absl::Status(code, "x"))) << absl::StatusCodeToString(code);
  }
  for (absl::StatusCode code :
       {absl::StatusCode::kOk, absl::StatusCode::kInvalidArgument, absl::StatusCode::kNotFound,
        absl::StatusCode::kPermissionDenied, absl::StatusCode::kFailedPrecondition,
        absl::StatusCode::kAlreadyExists, absl::StatusCode::kOutOfRange,
        absl::StatusCode::kUnauthenticated}) {
    EXPECT_FALSE(Client::IsNoAnswer(absl::Status(code, "x"))) << absl::StatusCodeToString(code);
  }
}

TEST(ClientTest, CreateRefusesAnEmptyTargetAndANonPositiveTimeout) {
  EXPECT_EQ(Client::Create({.target = ""}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      Client::Create({.target = "127.0.0.1:1", .timeout = absl::ZeroDuration()}).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Client::Create({.target = "127.0.0.1:1"}).ok());
}

}  // namespace
}  // namespace agate::client
