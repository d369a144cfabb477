#include "server/webhook.h"

#include <pthread.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"
#include "spdlog/spdlog.h"

namespace agate::server {

absl::StatusOr<ParsedUrl> ParseWebhookUrl(absl::string_view url) {
  absl::string_view rest = url;
  absl::string_view scheme;
  if (absl::ConsumePrefix(&rest, "http://")) {
    scheme = "http://";
  } else if (absl::ConsumePrefix(&rest, "https://")) {
    scheme = "https://";
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--webhook: expected an http:// or https:// URL, got '", url, "'"));
  }
  const size_t slash = rest.find_first_of("/?");
  const absl::string_view host = rest.substr(0, slash);
  if (host.empty() || absl::StrContains(host, "@") || absl::StrContains(host, " ")) {
    return absl::InvalidArgumentError(absl::StrCat("--webhook: no valid host in '", url, "'"));
  }
  ParsedUrl parsed;
  parsed.scheme_host_port = absl::StrCat(scheme, host);
  parsed.path = slash == absl::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (parsed.path[0] == '?') parsed.path.insert(0, "/");
  return parsed;
}

absl::StatusOr<std::unique_ptr<WebhookPoster>> WebhookPoster::Start(cases::CaseStore& store,
                                                                    absl::string_view url,
                                                                    WebhookOptions options,
                                                                    service::Counters* counters) {
  absl::StatusOr<ParsedUrl> parsed = ParseWebhookUrl(url);
  if (!parsed.ok()) return parsed.status();
  if (options.attempts < 1) return absl::InvalidArgumentError("webhook attempts must be >= 1");
  absl::StatusOr<HttpPost> http = HttpPost::Load();
  if (!http.ok())
    return absl::FailedPreconditionError(absl::StrCat("--webhook: ", http.status().message()));
  return std::unique_ptr<WebhookPoster>(
      new WebhookPoster(store, *std::move(parsed), options, *http, counters));
}

WebhookPoster::WebhookPoster(cases::CaseStore& store, ParsedUrl url, WebhookOptions options,
                             HttpPost http, service::Counters* counters)
    : store_(store), url_(std::move(url)), options_(options), http_(http), counters_(counters) {
  // Each replica of a shared store posts the transitions it made (not those it absorbed): one
  // post per transition across the replicas.
  watcher_ = store_.Watch(
      {}, cases::TenantScope::All(),
      [this] {
        absl::MutexLock lock(&mu_);
        pending_ = true;
      },
      /*local_only=*/true);
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "agate-webhook");
    Run();
  });
}

WebhookPoster::~WebhookPoster() {
  store_.Unwatch(watcher_);
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

bool WebhookPoster::Post(const std::string& body) {
  absl::StatusOr<int> status = http_.Post(url_.scheme_host_port, url_.path, body, options_.timeout);
  if (!status.ok()) {
    spdlog::warn("webhook {}{}: {}", url_.scheme_host_port, url_.path,
                 std::string(status.status().message()));
    return false;
  }
  if (*status < 200 || *status >= 300) {
    spdlog::warn("webhook {}{}: HTTP {}", url_.scheme_host_port, url_.path, *status);
    return false;
  }
  return true;
}

void WebhookPoster::Run() {
  google::protobuf::util::JsonPrintOptions json;
  json.preserve_proto_field_names = true;
  auto stopping_or_pending = [this]()
                                 ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || pending_; };
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(&stopping_or_pending));
      if (stop_) return;
      pending_ = false;
    }
    cases::WatchedEvent watched;
    while (watcher_->Next(&watched)) {
      const v1::CaseEvent event = watched.Parse();
      std::string body;
      if (!google::protobuf::util::MessageToJsonString(event, &body, json).ok()) continue;
      absl::Duration backoff = options_.first_backoff;
      bool delivered = false;
      for (int attempt = 1; attempt <= options_.attempts && !delivered; ++attempt) {
        delivered = Post(body);
        if (delivered || attempt == options_.attempts) break;
        absl::MutexLock lock(&mu_);
        auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
        if (mu_.AwaitWithTimeout(absl::Condition(&stopping), backoff)) return;
        backoff *= 2;
      }
      if (delivered) {
        delivered_.fetch_add(1);
        if (counters_ != nullptr) service::Counters::Add(counters_->webhook_deliveries);
      } else {
        failed_.fetch_add(1);
        if (counters_ != nullptr) service::Counters::Add(counters_->webhook_failures);
        spdlog::error("webhook: gave up on event {} of case {} after {} attempts", event.sequence(),
                      event.case_().id(), options_.attempts);
      }
    }
  }
}

}  // namespace agate::server
