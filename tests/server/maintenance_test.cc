// The maintenance loop in virtual time: timeouts run when due, the sleep follows the next
// deadline, count() windows are snapshotted on schedule, unsynced changes are retried.
#include "server/maintenance.h"

#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/service.h"
#include "store/sqlite_store.h"
#include "tests/testing/fixtures.h"
#include "tests/testing/process.h"

namespace agate::server {
namespace {

TEST(MaintenanceTest, RunsTimeoutsWhenDueAndSleepsUntilTheNextDeadline) {
  FakeClock clock;
  std::unique_ptr<service::Service> service =
      *service::Service::Create(testing::BundledMatrix(), clock);
  Maintenance maintenance(*service, clock);
  EXPECT_EQ(maintenance.RunOnce(), absl::Seconds(1));  // nothing armed: the longest sleep

  v1::EvaluateResponse response;
  ASSERT_TRUE(service->Evaluate(testing::MakeRequest("r1", testing::kBlock), &response).ok());
  ASSERT_EQ(response.verdict(), v1::VERDICT_BLOCK);  // financial lane: 4h, then expire
  clock.Advance(absl::Hours(4) - absl::Milliseconds(300));
  EXPECT_EQ(maintenance.RunOnce(), absl::Milliseconds(300));
  EXPECT_EQ(service->cases().Get(response.case_id())->state(), v1::CASE_STATE_OPEN);
  clock.Advance(absl::Milliseconds(300));
  maintenance.RunOnce();
  EXPECT_EQ(service->cases().Get(response.case_id())->state(), v1::CASE_STATE_EXPIRED);
  EXPECT_EQ(service->cases().open_cases(), 0u);
}

TEST(MaintenanceTest, SnapshotsCountWindowsEveryIntervalAndAtFinish) {
  testing::TempDir dir;
  FakeClock clock;
  std::unique_ptr<store::SqliteStore> sqlite = *store::SqliteStore::Open({.dir = dir.path()});
  service::ServiceOptions options;
  options.store = sqlite.get();
  std::unique_ptr<service::Service> service =
      *service::Service::Create(testing::BundledMatrix(), clock, options);
  Maintenance maintenance(*service, clock, {.snapshot_interval = absl::Seconds(5)});
  v1::EvaluateResponse response;
  ASSERT_TRUE(
      service->Evaluate(testing::MakeRequest("r1", "signals { key: 'retry' value: 1 }"), &response)
          .ok());
  maintenance.RunOnce();
  EXPECT_THAT(*sqlite->LoadSignals(), ::testing::IsEmpty());  // not due yet
  clock.Advance(absl::Seconds(5));
  maintenance.RunOnce();
  EXPECT_THAT(*sqlite->LoadSignals(), ::testing::SizeIs(1));
}

}  // namespace
}  // namespace agate::server
