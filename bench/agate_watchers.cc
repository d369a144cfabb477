// agate-watchers: holds W WatchCases streams open and reads every event they carry, as an
// operator console would (bench/watchers.sh measures what they cost the server per escalation).
//
//   agate-watchers --target ADDR [--watchers W] [--per-connection N] [--batch-window D]
//                  [--summary]
//
// Streams are spread over connections of at most N streams each (default 100: below HTTP/2's
// stream limit, which agate-server sets to --max-in-flight). With --batch-window each stream asks
// the server for at most one message per window (events in CaseEvent.more); with --summary, for
// CASE_VIEW_SUMMARY. It runs until SIGINT or SIGTERM, then cancels every stream and prints one
// line to stdout:
//   agate-watchers: W streams, E events read in M messages (B bytes), D dropped by the server,
//   F ended early
// ("dropped" sums CaseEvent.dropped: events the server discarded because a stream fell behind).
#include <signal.h>

#include <atomic>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "agate/v1/agate.grpc.pb.h"
#include "common/command_line.h"
#include "common/proto_time.h"
#include "grpcpp/grpcpp.h"

namespace agate::watchers {
namespace {

struct Totals {
  std::atomic<int64_t> events{0};
  std::atomic<int64_t> messages{0};
  std::atomic<int64_t> bytes{0};
  std::atomic<int64_t> dropped{0};
  std::atomic<int64_t> ended_early{0};
};

// Watcher: one stream, reading until it ends.
class Watcher final : public grpc::ClientReadReactor<v1::CaseEvent> {
 public:
  Watcher(v1::Agate::Stub& stub, const v1::WatchCasesRequest& request, Totals& totals)
      : totals_(totals), request_(request) {
    stub.async()->WatchCases(&context_, &request_, this);
    StartRead(&event_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended: OnDone follows
    int64_t dropped = static_cast<int64_t>(event_.dropped());
    for (const v1::CaseEvent& e : event_.more()) dropped += static_cast<int64_t>(e.dropped());
    totals_.events.fetch_add(1 + event_.more_size(), std::memory_order_relaxed);
    totals_.messages.fetch_add(1, std::memory_order_relaxed);
    totals_.bytes.fetch_add(static_cast<int64_t>(event_.ByteSizeLong()), std::memory_order_relaxed);
    totals_.dropped.fetch_add(dropped, std::memory_order_relaxed);
    StartRead(&event_);
  }
  void OnDone(const grpc::Status& status) override {
    if (!cancelled_.load()) {
      totals_.ended_early.fetch_add(1, std::memory_order_relaxed);
      std::cerr << "agate-watchers: a stream ended: " << status.error_code() << " "
                << status.error_message() << "\n";
    }
    done_.Notify();
  }
  void Cancel() {
    cancelled_.store(true);
    context_.TryCancel();
  }
  void Wait() { done_.WaitForNotification(); }

 private:
  Totals& totals_;
  grpc::ClientContext context_;
  v1::WatchCasesRequest request_;
  v1::CaseEvent event_;
  std::atomic<bool> cancelled_{false};
  absl::Notification done_;
};

int Main(const std::vector<std::string>& args) {
  absl::StatusOr<CommandLine> cl =
      CommandLine::Parse(args, {.values = {"target", "watchers", "per-connection", "batch-window"},
                                .booleans = {"summary"}});
  const auto usage = [](absl::string_view message) {
    std::cerr << "agate-watchers: " << message
              << "\nusage: agate-watchers --target ADDR [--watchers W] [--per-connection N] "
                 "[--batch-window D] [--summary]\n";
    return 2;
  };
  if (!cl.ok()) return usage(cl.status().message());
  const std::string target = cl->Value("target").value_or("");
  if (target.empty()) return usage("--target is required");
  absl::StatusOr<int64_t> watchers = cl->Int("watchers", 100);
  absl::StatusOr<int64_t> per_connection = cl->Int("per-connection", 100);
  if (!watchers.ok()) return usage(watchers.status().message());
  if (!per_connection.ok() || *per_connection < 1) return usage("--per-connection: must be >= 1");
  absl::StatusOr<absl::Duration> batch_window = cl->Duration("batch-window", absl::ZeroDuration());
  if (!batch_window.ok()) return usage(batch_window.status().message());
  v1::WatchCasesRequest request;
  if (*batch_window > absl::ZeroDuration()) {
    *request.mutable_batch_window() = ToDurationProto(*batch_window);
  }
  if (cl->Has("summary")) request.set_view(v1::CASE_VIEW_SUMMARY);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Totals totals;
  std::vector<std::unique_ptr<v1::Agate::Stub>> stubs;
  std::vector<std::unique_ptr<Watcher>> streams;
  for (int64_t i = 0; i < *watchers; ++i) {
    if (i % *per_connection == 0) {
      grpc::ChannelArguments channel_args;
      // A distinct argument: a connection of its own.
      channel_args.SetInt("agate.watchers.connection", static_cast<int>(stubs.size()));
      stubs.push_back(v1::Agate::NewStub(
          grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), channel_args)));
    }
    streams.push_back(std::make_unique<Watcher>(*stubs.back(), request, totals));
  }
  int sig = 0;
  sigwait(&signals, &sig);
  for (auto& s : streams) s->Cancel();
  for (auto& s : streams) s->Wait();
  std::cout << "agate-watchers: " << streams.size() << " streams, " << totals.events.load()
            << " events read in " << totals.messages.load() << " messages (" << totals.bytes.load()
            << " bytes), " << totals.dropped.load() << " dropped by the server, "
            << totals.ended_early.load() << " ended early" << std::endl;
  return 0;
}

}  // namespace
}  // namespace agate::watchers

int main(int argc, char** argv) {
  return agate::watchers::Main(std::vector<std::string>(argv + 1, argv + argc));
}
