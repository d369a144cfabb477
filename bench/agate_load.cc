// agate-load: a load generator for agate's Evaluate built on the generated C++ stub (callback
// API). It checks every response's gRPC status and verdict against the request mix.
//
//   agate-load --target 127.0.0.1:7878 [--connections N] [--concurrency C] [--rate R]
//              [--duration D | --requests N] [--mix FILE] [--timeout D] [--replay] [--json]
//              [--unique-items]
//
// Closed loop (default): C calls in flight, each completion sends the next. Open loop (--rate R):
// requests are scheduled at a fixed rate and latency is measured from the *intended* send time,
// so a server that stalls is charged for the requests queued behind the stall (no coordinated
// omission); at most C are in flight. --mix is a JSON-lines file, one entry per line:
//   {"weight": 9, "expect": "VERDICT_ALLOW", "request": {...EvaluateRequest...}}
// Every second a progress line goes to stderr; at the end a report (or --json) to stdout.
// Each call gets a request_id of its own (the mix's id + a run nonce + a counter): agate answers a
// request_id it already decided from its idempotency cache, which --replay measures instead.
// --unique-items gives each call an item_id of its own too, so that each escalation opens a case
// (one item's escalations join its open case).
// Targets are loopback or Unix sockets only; the run is bounded by --duration or --requests.
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "agate/v1/agate.grpc.pb.h"
#include "client/client.h"
#include "common/command_line.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"

namespace agate::load {
namespace {

// A log-linear latency histogram in nanoseconds: 64 sub-buckets per power of two (<= 1.6% error).
class Histogram {
 public:
  void Add(int64_t ns) {
    ++counts_[Index(std::max<int64_t>(ns, 0))];
    ++total_;
    max_ = std::max(max_, ns);
  }
  void Merge(const Histogram& o) {
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    max_ = std::max(max_, o.max_);
  }
  int64_t Percentile(double p) const {
    if (total_ == 0) return 0;
    const uint64_t rank = static_cast<uint64_t>(std::ceil(p / 100.0 * total_));
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= std::max<uint64_t>(rank, 1)) return std::min(Upper(i), max_);
    }
    return max_;
  }
  uint64_t total() const { return total_; }
  int64_t max() const { return max_; }

 private:
  static constexpr int kSub = 64;
  static size_t Index(int64_t v) {
    if (v < 2 * kSub) return static_cast<size_t>(v);
    const int msb = 63 - __builtin_clzll(static_cast<uint64_t>(v));
    const int shift = msb - 6;
    return 2 * kSub + static_cast<size_t>(msb - 7) * kSub + ((v >> shift) & (kSub - 1));
  }
  static int64_t Upper(size_t i) {
    if (i < 2 * kSub) return static_cast<int64_t>(i);
    const size_t k = i - 2 * kSub;
    const int msb = static_cast<int>(k / kSub) + 7;
    const int64_t sub = static_cast<int64_t>(k % kSub);
    return ((kSub + sub + 1) << (msb - 6)) - 1;
  }
  std::array<uint64_t, 2 * kSub + 57 * kSub> counts_{};
  uint64_t total_ = 0;
  int64_t max_ = 0;
};

struct MixEntry {
  double weight = 1;
  std::string expect;  // verdict name, empty: any
  v1::EvaluateRequest request;
};

struct Stats {
  Histogram latency;
  std::map<std::string, uint64_t> errors;    // by gRPC code name
  std::map<std::string, uint64_t> verdicts;  // by verdict name
  uint64_t mismatches = 0;
};

std::string CodeName(grpc::StatusCode code) {
  static const char* kNames[] = {"OK",
                                 "CANCELLED",
                                 "UNKNOWN",
                                 "INVALID_ARGUMENT",
                                 "DEADLINE_EXCEEDED",
                                 "NOT_FOUND",
                                 "ALREADY_EXISTS",
                                 "PERMISSION_DENIED",
                                 "RESOURCE_EXHAUSTED",
                                 "FAILED_PRECONDITION",
                                 "ABORTED",
                                 "OUT_OF_RANGE",
                                 "UNIMPLEMENTED",
                                 "INTERNAL",
                                 "UNAVAILABLE",
                                 "DATA_LOSS",
                                 "UNAUTHENTICATED"};
  const int i = static_cast<int>(code);
  return i >= 0 && i < 17 ? kNames[i] : absl::StrCat("CODE_", i);
}

bool IsLoopback(const std::string& target) {
  if (absl::StartsWith(target, "unix:")) return true;
  return absl::StartsWith(target, "127.") || absl::StartsWith(target, "localhost:") ||
         absl::StartsWith(target, "[::1]:");
}

absl::StatusOr<std::vector<MixEntry>> LoadMix(const std::optional<std::string>& path) {
  std::vector<MixEntry> mix;
  if (!path.has_value()) {
    MixEntry allow;
    allow.expect = "VERDICT_ALLOW";
    allow.request.set_request_id("load");
    allow.request.set_tenant_id("t1");
    allow.request.set_workflow_id("support");
    allow.request.set_item_id("ticket-1");
    allow.request.mutable_action()->set_type("send_reply");
    allow.request.mutable_action()->set_customer_facing(true);
    allow.request.mutable_model()->set_confidence(0.93);
    mix.push_back(allow);
    return mix;
  }
  std::ifstream in(*path);
  if (!in) return absl::NotFoundError(absl::StrCat("--mix: cannot read ", *path));
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    google::protobuf::Struct entry;
    if (!google::protobuf::util::JsonStringToMessage(line, &entry).ok()) {
      return absl::InvalidArgumentError(absl::StrCat(*path, ":", number, ": not a JSON object"));
    }
    MixEntry e;
    const auto& f = entry.fields();
    if (auto w = f.find("weight"); w != f.end()) e.weight = w->second.number_value();
    if (auto x = f.find("expect"); x != f.end()) e.expect = x->second.string_value();
    auto r = f.find("request");
    std::string request_json;
    if (r == f.end() ||
        !google::protobuf::util::MessageToJsonString(r->second, &request_json).ok() ||
        !google::protobuf::util::JsonStringToMessage(request_json, &e.request).ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(*path, ":", number, ": \"request\" is not an EvaluateRequest"));
    }
    if (!(e.weight > 0)) {
      return absl::InvalidArgumentError(absl::StrCat(*path, ":", number, ": weight must be > 0"));
    }
    mix.push_back(std::move(e));
  }
  if (mix.empty()) return absl::InvalidArgumentError(absl::StrCat("--mix: ", *path, " is empty"));
  return mix;
}

class Runner {
 public:
  Runner(std::vector<std::unique_ptr<v1::Agate::Stub>> stubs, std::vector<MixEntry> mix,
         int concurrency, double rate, absl::Duration duration, int64_t requests,
         absl::Duration timeout, bool replay, bool unique_items, std::string token)
      : stubs_(std::move(stubs)),
        mix_(std::move(mix)),
        concurrency_(concurrency),
        rate_(rate),
        duration_(duration),
        requests_(requests),
        timeout_(timeout),
        replay_(replay),
        unique_items_(unique_items),
        authorization_(token.empty() ? "" : absl::StrCat("Bearer ", token)),
        nonce_(absl::StrCat(absl::Hex(absl::Uniform<uint32_t>(absl::BitGen()), absl::kZeroPad8))) {
    std::vector<double> weights;
    for (const MixEntry& e : mix_) weights.push_back(e.weight);
    pick_ = std::discrete_distribution<int>(weights.begin(), weights.end());
  }

  void Run() {
    start_ = absl::Now();
    std::thread progress([this] { Progress(); });
    if (rate_ > 0) {
      OpenLoop();
    } else {
      for (int i = 0; i < concurrency_; ++i) Issue(absl::Now());
    }
    {
      // Wait for the end and for the calls in flight.
      absl::MutexLock lock(&mu_);
      auto done = [this]()
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopped_ && in_flight_ == 0; };
      mu_.AwaitWithTimeout(absl::Condition(&done), duration_ + timeout_ + absl::Seconds(10));
      finished_ = true;
      end_ = absl::Now();
    }
    progress.join();
  }

  void Report(bool json) {
    absl::MutexLock lock(&mu_);
    const double seconds = absl::ToDoubleSeconds(end_ - start_);
    const uint64_t ok = total_.latency.total();
    uint64_t errors = 0;
    for (const auto& [code, n] : total_.errors) errors += n;
    auto us = [&](double p) { return total_.latency.Percentile(p) / 1000.0; };
    if (json) {
      std::string errs, verdicts;
      for (const auto& [k, v] : total_.errors)
        absl::StrAppend(&errs, errs.empty() ? "" : ",", "\"", k, "\":", v);
      for (const auto& [k, v] : total_.verdicts)
        absl::StrAppend(&verdicts, verdicts.empty() ? "" : ",", "\"", k, "\":", v);
      std::cout
          << absl::StrFormat(
                 R"({"seconds":%.3f,"requests":%d,"ok":%d,"rps":%.1f,"latency_us":{"p50":%.1f,"p90":%.1f,"p99":%.1f,"p999":%.1f,"max":%.1f},"errors":{%s},"verdicts":{%s},"mismatches":%d})",
                 seconds, ok + errors, ok, (ok + errors) / seconds, us(50), us(90), us(99),
                 us(99.9), total_.latency.max() / 1000.0, errs, verdicts, total_.mismatches)
          << std::endl;
      return;
    }
    std::cout << absl::StrFormat(
        "agate-load: %d requests in %.2fs: %.0f req/s; latency us p50 %.1f p90 %.1f p99 %.1f "
        "p99.9 %.1f max %.1f\n",
        ok + errors, seconds, (ok + errors) / seconds, us(50), us(90), us(99), us(99.9),
        total_.latency.max() / 1000.0);
    std::cout << "agate-load: verdicts";
    for (const auto& [k, v] : total_.verdicts) std::cout << " " << k << "=" << v;
    std::cout << "; errors";
    if (total_.errors.empty()) std::cout << " none";
    for (const auto& [k, v] : total_.errors) std::cout << " " << k << "=" << v;
    std::cout << "; verdict mismatches " << total_.mismatches << std::endl;
  }

  bool clean() {
    absl::MutexLock lock(&mu_);
    return total_.errors.empty() && total_.mismatches == 0;
  }

 private:
  struct Call {
    grpc::ClientContext context;
    v1::EvaluateRequest request;
    v1::EvaluateResponse response;
    int entry = 0;
    absl::Time intended;
    // Released by Start, acquired by Done: tells ThreadSanitizer what gRPC guarantees (the call
    // is handed to the callback's thread inside libgrpc, which Debian does not instrument).
    std::atomic<bool> started{false};
  };

  // Issue starts one call scheduled at `intended`, unless the run is over.
  void Issue(absl::Time intended) {
    auto call = std::make_unique<Call>();
    bool reserved;
    {
      absl::MutexLock lock(&mu_);
      reserved = ReserveLocked(call.get());
    }
    if (reserved) Start(std::move(call), intended);
  }

  // ReserveLocked counts *call in flight and fills its request, or returns false when the run is
  // over.
  bool ReserveLocked(Call* call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (stopped_ || (requests_ > 0 && issued_ >= requests_) || absl::Now() - start_ >= duration_) {
      stopped_ = true;
      return false;
    }
    ++issued_;
    ++in_flight_;
    call->entry = pick_(rng_);
    call->request = mix_[call->entry].request;
    if (!replay_) {
      // agate answers a request_id it has decided with the stored decision (idempotency):
      // every call gets its own id so that each one is evaluated.
      call->request.set_request_id(
          absl::StrCat(call->request.request_id(), "-", nonce_, "-", issued_));
    }
    if (unique_items_) {
      call->request.set_item_id(absl::StrCat(call->request.item_id(), "-", nonce_, "-", issued_));
    }
    return true;
  }

  void Start(std::unique_ptr<Call> call, absl::Time intended) {
    call->intended = intended;
    call->context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
    if (!authorization_.empty()) call->context.AddMetadata("authorization", authorization_);
    Call* raw = call.release();
    raw->started.store(true, std::memory_order_release);
    v1::Agate::Stub& stub = *stubs_[next_stub_.fetch_add(1) % stubs_.size()];
    stub.async()->Evaluate(&raw->context, &raw->request, &raw->response,
                           [this, raw](grpc::Status status) { Done(raw, status); });
  }

  // Done records a finished call and, in the closed loop, starts the next one. Once in_flight_
  // reaches 0 after the end, Run returns and the Runner and its channels go: so the finished
  // call is destroyed before its count is dropped, the next one is counted in the same critical
  // section, and nothing touches `this` after the unlock unless a call is still counted.
  void Done(Call* raw, const grpc::Status& status) {
    (void)raw->started.load(std::memory_order_acquire);
    const int64_t ns = absl::ToInt64Nanoseconds(absl::Now() - raw->intended);
    const int entry = raw->entry;
    const std::string verdict = status.ok() ? v1::Verdict_Name(raw->response.verdict()) : "";
    delete raw;
    std::unique_ptr<Call> next = rate_ <= 0 ? std::make_unique<Call>() : nullptr;
    bool reserved = false;
    {
      absl::MutexLock lock(&mu_);
      for (Stats* s : {&total_, &second_}) {
        if (status.ok()) {
          s->latency.Add(ns);
          ++s->verdicts[verdict];
          const std::string& expect = mix_[entry].expect;
          if (!expect.empty() && expect != verdict) ++s->mismatches;
        } else {
          ++s->errors[CodeName(status.error_code())];
        }
      }
      if (next != nullptr) reserved = ReserveLocked(next.get());
      --in_flight_;
    }
    if (reserved) Start(std::move(next), absl::Now());
  }

  void OpenLoop() {
    const absl::Duration period = absl::Seconds(1) / rate_;
    for (int64_t i = 0;; ++i) {
      const absl::Time intended = start_ + i * period;
      const absl::Duration wait = intended - absl::Now();
      if (wait > absl::ZeroDuration()) absl::SleepFor(wait);
      {
        // At most `concurrency` in flight: wait for a slot; the wait counts as latency.
        absl::MutexLock lock(&mu_);
        auto slot = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return in_flight_ < concurrency_ || stopped_;
        };
        mu_.Await(absl::Condition(&slot));
        if (stopped_) return;
      }
      Issue(intended);
      absl::MutexLock lock(&mu_);
      if (stopped_) return;
    }
  }

  void Progress() {
    for (int tick = 1;; ++tick) {
      absl::MutexLock lock(&mu_);
      auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return finished_; };
      if (mu_.AwaitWithDeadline(absl::Condition(&done), start_ + absl::Seconds(tick))) return;
      uint64_t errors = 0;
      for (const auto& [code, n] : second_.errors) errors += n;
      std::cerr << absl::StrFormat(
          "agate-load: t=%ds %d req/s p50 %.1fus p99 %.1fus errors %d mismatches %d in-flight "
          "%d\n",
          tick, second_.latency.total() + errors, second_.latency.Percentile(50) / 1000.0,
          second_.latency.Percentile(99) / 1000.0, errors, second_.mismatches, in_flight_);
      second_ = Stats();
    }
  }

  std::vector<std::unique_ptr<v1::Agate::Stub>> stubs_;
  std::vector<MixEntry> mix_;
  const int concurrency_;
  const double rate_;
  const absl::Duration duration_;
  const int64_t requests_;
  const absl::Duration timeout_;
  const bool replay_;                // send the mix's request_ids unchanged (measures replays)
  const bool unique_items_;          // an item_id per call: each escalation opens a case
  const std::string authorization_;  // "Bearer <token>", or empty
  const std::string nonce_;          // makes this run's request_ids unique across runs
  std::atomic<uint64_t> next_stub_{0};

  absl::Mutex mu_;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_){42};
  std::discrete_distribution<int> pick_ ABSL_GUARDED_BY(mu_);
  absl::Time start_, end_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  int64_t issued_ ABSL_GUARDED_BY(mu_) = 0;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  Stats total_ ABSL_GUARDED_BY(mu_);
  Stats second_ ABSL_GUARDED_BY(mu_);
};

int Main(const std::vector<std::string>& args) {
  absl::StatusOr<CommandLine> cl = CommandLine::Parse(
      args, {.values = {"target", "connections", "concurrency", "rate", "duration", "requests",
                        "mix", "timeout", "tls-ca", "tls-cert", "tls-key", "token"},
             .booleans = {"json", "help", "replay", "unique-items"}});
  auto usage = [](absl::string_view message) {
    std::cerr << "agate-load: " << message
              << "\nusage: agate-load --target ADDR [--connections N] [--concurrency C] [--rate "
                 "R] [--duration D | --requests N] [--mix FILE] [--timeout D] [--replay] [--json]\n"
                 "       [--unique-items]\n"
                 "       [--tls-ca FILE [--tls-cert FILE --tls-key FILE]] [--token JWT]\n";
    return 2;
  };
  if (!cl.ok()) return usage(cl.status().message());
  if (cl->Has("help")) return usage("help");
  const std::string target = cl->Value("target").value_or("");
  if (target.empty()) return usage("--target is required");
  if (!IsLoopback(target)) return usage("--target must be a loopback address or unix:PATH");
  absl::StatusOr<int64_t> connections = cl->Int("connections", 1);
  absl::StatusOr<int64_t> concurrency = cl->Int("concurrency", 16);
  absl::StatusOr<int64_t> rate = cl->Int("rate", 0);
  absl::StatusOr<int64_t> requests = cl->Int("requests", 0);
  absl::StatusOr<absl::Duration> duration =
      cl->Duration("duration", requests.ok() && *requests > 0 ? absl::Hours(1) : absl::Seconds(10));
  absl::StatusOr<absl::Duration> timeout = cl->Duration("timeout", absl::Seconds(1));
  for (const absl::Status& s : {connections.status(), concurrency.status(), rate.status(),
                                requests.status(), duration.status(), timeout.status()}) {
    if (!s.ok()) return usage(s.message());
  }
  if (*connections < 1 || *connections > 64) return usage("--connections must be in [1, 64]");
  if (*concurrency < 1 || *concurrency > 10000) return usage("--concurrency must be in [1, 10000]");
  if (*duration > absl::Hours(1)) return usage("--duration is at most 1h");
  absl::StatusOr<std::vector<MixEntry>> mix = LoadMix(cl->Value("mix"));
  if (!mix.ok()) return usage(mix.status().message());

  const client::ClientOptions security{.target = target,
                                       .tls_ca = cl->Value("tls-ca").value_or(""),
                                       .tls_cert = cl->Value("tls-cert").value_or(""),
                                       .tls_key = cl->Value("tls-key").value_or(""),
                                       .token = cl->Value("token").value_or("")};
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      client::ChannelCredentials(security);
  if (!credentials.ok()) return usage(credentials.status().message());
  std::vector<std::unique_ptr<v1::Agate::Stub>> stubs;
  for (int64_t i = 0; i < *connections; ++i) {
    grpc::ChannelArguments channel_args;
    channel_args.SetInt("agate.load.connection", static_cast<int>(i));  // one TCP connection each
    stubs.push_back(
        v1::Agate::NewStub(grpc::CreateCustomChannel(target, *credentials, channel_args)));
  }
  Runner runner(std::move(stubs), *std::move(mix), static_cast<int>(*concurrency),
                static_cast<double>(*rate), *duration, *requests, *timeout, cl->Has("replay"),
                cl->Has("unique-items"), security.token);
  runner.Run();
  runner.Report(cl->Has("json"));
  return runner.clean() ? 0 : 1;
}

}  // namespace
}  // namespace agate::load

int main(int argc, char** argv) {
  return agate::load::Main(std::vector<std::string>(argv + 1, argv + argc));
}
