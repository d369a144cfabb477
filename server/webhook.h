// Webhook: posts every case transition as JSON to an HTTP(S) endpoint (`--webhook URL`).
//
// A WebhookPoster watches the CaseStore like any watcher (a bounded buffer: a webhook that is
// down or slow never slows Evaluate; events past the buffer are dropped and counted, and the
// next posted event carries `dropped`) and posts each CaseEvent from its own thread, as the
// proto3 JSON of agate.v1.CaseEvent (snake_case names), Content-Type application/json. A post
// that fails (connection error or a non-2xx status) is retried with backoff (attempts, then
// given up and counted as failed, logged at error). Delivery is at least once per attempt
// sequence and in order; receivers deduplicate by `sequence`.
//
// Thread-safe. Destruction stops the thread promptly (waits at most one HTTP timeout).
//
// Example:
//   absl::StatusOr<std::unique_ptr<WebhookPoster>> hook =
//       WebhookPoster::Start(store, "http://127.0.0.1:9000/agate", {}, &service.counters());
#ifndef AGATE_SERVER_WEBHOOK_H_
#define AGATE_SERVER_WEBHOOK_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cases/case_store.h"
#include "server/http_post.h"
#include "service/counters.h"

namespace agate::server {

struct WebhookOptions {
  // Attempts per event (the first try included).
  int attempts = 4;
  // Wait before the second attempt; doubles after each failure.
  absl::Duration first_backoff = absl::Milliseconds(200);
  // Connect, read and write timeout of one attempt.
  absl::Duration timeout = absl::Seconds(5);
};

// ParsedUrl is an http:// or https:// URL split for the HTTP client.
struct ParsedUrl {
  std::string scheme_host_port;  // "http://host:port"
  std::string path;              // "/path?query", "/" when empty
};

// ParseWebhookUrl accepts http:// and https:// URLs with a host; INVALID_ARGUMENT naming
// --webhook otherwise.
absl::StatusOr<ParsedUrl> ParseWebhookUrl(absl::string_view url);

class WebhookPoster {
 public:
  static absl::StatusOr<std::unique_ptr<WebhookPoster>> Start(
      cases::CaseStore& store, absl::string_view url, WebhookOptions options = {},
      service::Counters* counters = nullptr);
  ~WebhookPoster();

  // delivered counts events posted with a 2xx answer; failed counts events given up on.
  uint64_t delivered() const { return delivered_.load(); }
  uint64_t failed() const { return failed_.load(); }

 private:
  WebhookPoster(cases::CaseStore& store, ParsedUrl url, WebhookOptions options, HttpPost http,
                service::Counters* counters);
  void Run();
  bool Post(const std::string& body);

  cases::CaseStore& store_;
  const ParsedUrl url_;
  const WebhookOptions options_;
  const HttpPost http_;
  service::Counters* const counters_;  // may be null
  std::shared_ptr<cases::CaseWatcher> watcher_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<uint64_t> delivered_{0};
  std::atomic<uint64_t> failed_{0};
  std::thread thread_;
};

}  // namespace agate::server

#endif  // AGATE_SERVER_WEBHOOK_H_
