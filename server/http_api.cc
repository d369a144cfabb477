#include "server/http_api.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/json_string.h"
#include "common/proto_json.h"
#include "server/status.h"

namespace agate::server {
namespace {

using Params = std::vector<std::pair<absl::string_view, absl::string_view>>;

HttpAnswer Error(const absl::Status& status) {
  HttpAnswer answer;
  answer.status = HttpStatusOf(status.code());
  answer.body = absl::StrCat(R"({"code":)", static_cast<int>(status.code()), R"(,"status":")",
                             absl::StatusCodeToString(status.code()), R"(","message":")",
                             JsonEscape(status.message()), "\"}");
  return answer;
}

HttpAnswer Json(const google::protobuf::Message& message) {
  HttpAnswer answer;
  answer.body = ToJson(message);
  return answer;
}

template <typename T>
HttpAnswer Answer(const absl::StatusOr<T>& result) {
  return result.ok() ? Json(*result) : Error(result.status());
}

HttpAnswer Text(int status, std::string body) {
  HttpAnswer answer;
  answer.status = status;
  answer.content_type = "text/plain; charset=utf-8";
  answer.body = std::move(body);
  return answer;
}

// ParseJson reads a request body (empty: every field unset) as proto3 JSON (common/proto_json.h).
template <typename T>
absl::Status ParseJson(absl::string_view body, T* message) {
  if (absl::StripAsciiWhitespace(body).empty()) return absl::OkStatus();
  const absl::Status parsed = FromJson(body, message);
  if (parsed.ok()) return parsed;
  return absl::InvalidArgumentError(absl::StrCat(
      "request body: not a valid ", T::descriptor()->full_name(), " in JSON: ", parsed.message()));
}

// CheckParams refuses a query parameter not in known (a typo must not widen a filter).
absl::Status CheckParams(const Params& params, std::initializer_list<absl::string_view> known) {
  for (const auto& [name, value] : params) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "query: unknown parameter '", name, "'",
          known.size() == 0 ? " (this path takes none)"
                            : absl::StrCat(" (one of ", absl::StrJoin(known, ", "), ")")));
    }
  }
  return absl::OkStatus();
}

absl::string_view Param(const Params& params, absl::string_view name) {
  for (const auto& [n, v] : params) {
    if (n == name) return v;
  }
  return "";
}

// CheckMethod answers 405 unless method is one of allowed ("GET" or "GET, POST"; HEAD counts as
// GET).
std::optional<HttpAnswer> CheckMethod(absl::string_view method, absl::string_view allowed) {
  if (method == "HEAD") method = "GET";
  for (absl::string_view m : absl::StrSplit(allowed, ", ")) {
    if (m == method) return std::nullopt;
  }
  HttpAnswer answer = Error(absl::UnimplementedError(
      absl::StrCat("method ", method, " is not allowed here (", allowed, ")")));
  answer.status = 405;
  answer.headers.emplace_back("Allow", std::string(allowed));
  return answer;
}

// FormatValue prints a sample's value as Prometheus reads it (integers exactly).
std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.17g", value);
  return buffer;
}

// Escape escapes \ and newline (help text), and " too (label values).
void Escape(absl::string_view text, bool quote, std::string* out) {
  for (char c : text) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '"' && quote) {
      out->append("\\\"");
    } else {
      out->push_back(c);
    }
  }
}

const char* TypeName(service::MetricType type) {
  switch (type) {
    case service::MetricType::kCounter:
      return "counter";
    case service::MetricType::kGauge:
      return "gauge";
    case service::MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

std::string RenderPrometheus(const std::vector<service::MetricSample>& samples) {
  // Families in their first appearance's order, each with its samples.
  std::vector<std::vector<const service::MetricSample*>> families;
  absl::flat_hash_map<absl::string_view, size_t> index;
  for (const service::MetricSample& s : samples) {
    const absl::string_view family = s.family.empty() ? s.name : s.family;
    auto [it, inserted] = index.emplace(family, families.size());
    if (inserted) families.emplace_back();
    families[it->second].push_back(&s);
  }
  std::string out;
  out.reserve(samples.size() * 96);
  for (const std::vector<const service::MetricSample*>& family : families) {
    const service::MetricSample& first = *family.front();
    const absl::string_view name = first.family.empty() ? first.name : first.family;
    absl::StrAppend(&out, "# HELP ", name, " ");
    Escape(first.help, /*quote=*/false, &out);
    absl::StrAppend(&out, "\n# TYPE ", name, " ", TypeName(first.type), "\n");
    for (const service::MetricSample* s : family) {
      out.append(s->name);
      if (!s->labels.empty()) {
        out.push_back('{');
        for (size_t i = 0; i < s->labels.size(); ++i) {
          if (i > 0) out.push_back(',');
          absl::StrAppend(&out, s->labels[i].first, "=\"");
          Escape(s->labels[i].second, /*quote=*/true, &out);
          out.push_back('"');
        }
        out.push_back('}');
      }
      absl::StrAppend(&out, " ", FormatValue(s->value), "\n");
    }
  }
  return out;
}

absl::string_view HttpRequest::Header(absl::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (absl::EqualsIgnoreCase(n, name)) return v;
  }
  return "";
}

// WatchStream: one /v1/cases:watch response. The first write is a comment (": watching"), sent
// once the stream is subscribed; then the events kept after `after` (when resuming), then the
// live ones, with a comment every heartbeat in between.
class HttpApi::WatchStream final : public HttpStream {
 public:
  WatchStream(HttpApi& http, WatcherQuota::Slot slot, const v1::WatchCasesRequest& filter,
              const cases::TenantScope& scope, std::optional<uint64_t> after)
      : http_(http), slot_(std::move(slot)) {
    watcher_ = store().Watch(filter, scope, [this] {
      absl::MutexLock lock(&mu_);
      notified_ = true;
      cv_.Signal();
    });
    if (after.has_value()) {
      const cases::CaseWatcher matcher(filter, scope, {}, nullptr);
      for (EventHistory::Event& e : http_.history_.After(*after)) {
        cases::WatchedEvent event{std::move(e.bytes), 0};
        v1::CaseEvent parsed = event.Parse();
        if (!matcher.Matches(parsed.case_())) continue;
        if (matcher.summary()) *parsed.mutable_case_() = cases::Summary(parsed.case_());
        pending_.push_back(Format(e.sequence, parsed));
        replayed_up_to_ = e.sequence;
      }
    }
  }
  ~WatchStream() override {
    store().Unwatch(watcher_);
    http_.streams_.fetch_sub(1, std::memory_order_relaxed);
  }

  bool Next(const std::function<bool(absl::string_view)>& write) override {
    if (http_.stopping_.load(std::memory_order_relaxed)) return false;
    const absl::Time now = absl::Now();
    if (!started_) {
      started_ = true;
      next_heartbeat_ = now + http_.options_.heartbeat;
      std::string first = ": watching\n\n";
      for (const std::string& e : pending_) first.append(e);
      pending_.clear();
      return write(first);
    }
    cases::WatchedEvent event;
    if (watcher_->Next(&event)) {
      const uint64_t sequence = EventHistory::SequenceOf(*event.bytes);
      if (sequence != 0 && sequence <= replayed_up_to_) return true;  // sent from the history
      return write(Format(sequence, event.Parse()));
    }
    if (now >= next_heartbeat_) {
      next_heartbeat_ = now + http_.options_.heartbeat;
      return write(":\n\n");
    }
    absl::MutexLock lock(&mu_);
    // Short waits: Stop and the heartbeat are noticed within one.
    if (!notified_) {
      cv_.WaitWithTimeout(&mu_, std::min(absl::Milliseconds(200), http_.options_.heartbeat));
    }
    notified_ = false;
    return true;
  }

 private:
  static std::string Format(uint64_t sequence, const v1::CaseEvent& event) {
    return absl::StrCat("id: ", sequence, "\ndata: ", ToJson(event), "\n\n");
  }
  cases::CaseStore& store() { return http_.api_.service().cases(); }

  HttpApi& http_;
  WatcherQuota::Slot slot_;  // released with the stream
  std::shared_ptr<cases::CaseWatcher> watcher_;
  std::vector<std::string> pending_;  // from the history, sent with the first write
  uint64_t replayed_up_to_ = 0;
  bool started_ = false;
  absl::Time next_heartbeat_;
  absl::Mutex mu_;
  absl::CondVar cv_;
  bool notified_ ABSL_GUARDED_BY(mu_) = false;
};

HttpApi::HttpApi(Api& api, HttpApiOptions options)
    : api_(api), options_(options), history_(api.service().cases(), options.history_events) {}

HttpApi::~HttpApi() = default;

absl::StatusOr<Caller> HttpApi::Authenticate(const HttpRequest& request, absl::string_view method) {
  return api_.Authenticated(
      method, api_.identity().AuthenticateHeader(request.Header("Authorization")), request.remote);
}

HttpAnswer HttpApi::Handle(const HttpRequest& request) {
  if (request.refused_status == 413) {
    HttpAnswer answer = Error(absl::ResourceExhaustedError(absl::StrCat(
        "request body larger than ", options_.max_request_bytes, " bytes (--max-request-bytes)")));
    answer.status = 413;
    return answer;
  }
  if (request.refused_status != 0) {
    HttpAnswer answer = Error(absl::InvalidArgumentError(
        absl::StrCat("the HTTP server refused the request (HTTP ", request.refused_status, ")")));
    answer.status = request.refused_status;
    return answer;
  }
  static constexpr struct {
    absl::string_view path;
    absl::string_view methods;
    HttpAnswer (HttpApi::*handle)(const HttpRequest&);
  } kRoutes[] = {
      {"/v1/evaluate", "POST", &HttpApi::Evaluate},
      {"/v1/cases", "GET", &HttpApi::ListCases},
      {"/v1/cases:watch", "GET", &HttpApi::Watch},
      {"/v1/stats", "GET", &HttpApi::GetStats},
      {"/v1/whoami", "GET", &HttpApi::WhoAmI},
      {"/v1/shadow", "GET", &HttpApi::GetShadowReport},
      {"/v1/killswitches", "GET, POST", &HttpApi::KillSwitches},
      {"/metrics", "GET", &HttpApi::Metrics},
      {"/healthz", "GET", &HttpApi::Healthz},
      {"/readyz", "GET", &HttpApi::Readyz},
  };
  for (const auto& route : kRoutes) {
    if (request.path != route.path) continue;
    if (auto refused = CheckMethod(request.method, route.methods)) return *std::move(refused);
    return (this->*route.handle)(request);
  }
  // /v1/cases/{id} and /v1/cases/{id}:acknowledge.
  absl::string_view id = request.path;
  if (absl::ConsumePrefix(&id, "/v1/cases/") && !absl::StrContains(id, '/')) {
    if (absl::ConsumeSuffix(&id, ":acknowledge")) {
      if (auto refused = CheckMethod(request.method, "POST")) return *std::move(refused);
      return Acknowledge(request, id);
    }
    if (!absl::StrContains(id, ':')) {
      if (auto refused = CheckMethod(request.method, "GET")) return *std::move(refused);
      return GetCase(request, id);
    }
  }
  if (!absl::StartsWith(request.path, "/v1/")) return Console(request);
  return Error(absl::NotFoundError(absl::StrCat("no such path: ", request.path)));
}

HttpAnswer HttpApi::Console(const HttpRequest& request) {
  const ConsoleFiles::File* file =
      options_.console == nullptr ? nullptr : options_.console->Find(request.path);
  if (file == nullptr) {
    return Error(absl::NotFoundError(
        options_.console == nullptr && request.path == "/"
            ? "no operator console: agate-server was started without one (--console-dir)"
            : absl::StrCat("no such path: ", request.path)));
  }
  if (auto refused = CheckMethod(request.method, "GET")) return *std::move(refused);
  HttpAnswer answer;
  answer.headers = {{"ETag", file->etag},
                    {"Cache-Control", file->cache_control},
                    {"X-Content-Type-Options", "nosniff"},
                    {"Referrer-Policy", "no-referrer"},
                    {"X-Frame-Options", "DENY"},
                    {"Content-Security-Policy",
                     "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                     "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"}};
  answer.content_type = file->content_type;
  if (request.Header("If-None-Match") == file->etag) {
    answer.status = 304;
    return answer;
  }
  answer.body = file->content;
  return answer;
}

HttpAnswer HttpApi::WhoAmI(const HttpRequest& request) {
  if (absl::Status s = CheckParams(request.params, {}); !s.ok()) return Error(s);
  absl::StatusOr<Caller> caller = Authenticate(request, "WhoAmI");
  if (!caller.ok()) return Error(caller.status());
  const Api::Permissions permissions = api_.WhoAmI(*caller);
  HttpAnswer answer;
  answer.body =
      absl::StrCat(R"({"principal":)", ToJson(permissions.principal), R"(,"development":)",
                   permissions.development ? "true" : "false", R"(,"admin":)",
                   permissions.admin ? "true" : "false", R"(,"groups":{)");
  for (size_t i = 0; i < permissions.groups.size(); ++i) {
    const auto& [group, tenants] = permissions.groups[i];
    absl::StrAppend(&answer.body, i > 0 ? "," : "", "\"", JsonEscape(group), "\":[");
    for (size_t t = 0; t < tenants.size(); ++t) {
      absl::StrAppend(&answer.body, t > 0 ? "," : "", "\"", JsonEscape(tenants[t]), "\"");
    }
    answer.body.append("]");
  }
  answer.body.append("}}");
  return answer;
}

HttpAnswer HttpApi::Healthz(const HttpRequest&) { return Text(200, "ok\n"); }

HttpAnswer HttpApi::Readyz(const HttpRequest&) {
  if (!ready_.load(std::memory_order_relaxed)) return Text(503, "not ready\n");
  return Text(200, "ready\n");
}

HttpAnswer HttpApi::Evaluate(const HttpRequest& request) {
  absl::Status status = api_.EnterEvaluate(std::chrono::system_clock::time_point::max());
  absl::Cleanup leave = [this] { api_.LeaveEvaluate(); };
  if (!status.ok()) return Error(status);
  if (status = CheckParams(request.params, {}); !status.ok()) return Error(status);
  absl::StatusOr<Caller> caller = Authenticate(request, "Evaluate");
  if (!caller.ok()) return Error(caller.status());
  v1::EvaluateRequest parsed;
  if (status = ParseJson(request.body, &parsed); !status.ok()) return Error(status);
  v1::EvaluateResponse response;
  status = api_.Evaluate(*caller, parsed, &response);
  if (!status.ok()) return Error(status);
  HttpAnswer answer = Json(response);
  // Over HTTP the answer leaves when this returns: shadow mode and the capture cost it their time
  // (over gRPC they run after the answer is handed over).
  api_.service().AfterAnswer(parsed, response);
  return answer;
}

HttpAnswer HttpApi::Acknowledge(const HttpRequest& request, absl::string_view case_id) {
  if (absl::Status s = CheckParams(request.params, {}); !s.ok()) return Error(s);
  v1::AcknowledgeRequest parsed;
  if (absl::Status s = ParseJson(request.body, &parsed); !s.ok()) return Error(s);
  if (!parsed.case_id().empty() && parsed.case_id() != case_id) {
    return Error(absl::InvalidArgumentError(absl::StrCat(
        "case_id: the body names '", parsed.case_id(), "', the path '", case_id, "'")));
  }
  parsed.set_case_id(std::string(case_id));
  absl::StatusOr<Caller> caller = Authenticate(request, "Acknowledge");
  if (!caller.ok()) return Error(caller.status());
  return Answer(api_.Acknowledge(*caller, request.Header(kApproverMetadata), parsed));
}

HttpAnswer HttpApi::GetCase(const HttpRequest& request, absl::string_view case_id) {
  if (absl::Status s = CheckParams(request.params, {}); !s.ok()) return Error(s);
  absl::StatusOr<Caller> caller = Authenticate(request, "GetCase");
  if (!caller.ok()) return Error(caller.status());
  v1::GetCaseRequest parsed;
  parsed.set_case_id(std::string(case_id));
  return Answer(api_.GetCase(*caller, parsed));
}

HttpAnswer HttpApi::ListCases(const HttpRequest& request) {
  if (absl::Status s = CheckParams(request.params,
                                   {"state", "lane", "tenant", "owner", "page_size", "page_token"});
      !s.ok()) {
    return Error(s);
  }
  v1::ListCasesRequest parsed;
  if (absl::string_view state = Param(request.params, "state"); !state.empty()) {
    v1::CaseState value;
    const std::string upper = absl::AsciiStrToUpper(state);
    if (!v1::CaseState_Parse(upper, &value) &&
        !v1::CaseState_Parse(absl::StrCat("CASE_STATE_", upper), &value)) {
      return Error(absl::InvalidArgumentError(absl::StrCat(
          "state: '", state, "' is not a case state (OPEN, APPROVED, REJECTED, ...)")));
    }
    parsed.set_state(value);
  }
  parsed.set_lane(std::string(Param(request.params, "lane")));
  parsed.set_tenant_id(std::string(Param(request.params, "tenant")));
  parsed.set_owner(std::string(Param(request.params, "owner")));
  parsed.set_page_token(std::string(Param(request.params, "page_token")));
  if (absl::string_view size = Param(request.params, "page_size"); !size.empty()) {
    int32_t n = 0;
    if (!absl::SimpleAtoi(size, &n)) {
      return Error(
          absl::InvalidArgumentError(absl::StrCat("page_size: '", size, "' is not a number")));
    }
    parsed.set_page_size(n);
  }
  absl::StatusOr<Caller> caller = Authenticate(request, "ListCases");
  if (!caller.ok()) return Error(caller.status());
  return Answer(api_.ListCases(*caller, parsed));
}

HttpAnswer HttpApi::GetStats(const HttpRequest& request) {
  if (absl::Status s = CheckParams(request.params, {}); !s.ok()) return Error(s);
  absl::StatusOr<Caller> caller = Authenticate(request, "GetStats");
  if (!caller.ok()) return Error(caller.status());
  return Json(api_.GetStats(*caller));
}

HttpAnswer HttpApi::GetShadowReport(const HttpRequest& request) {
  if (absl::Status s = CheckParams(request.params, {}); !s.ok()) return Error(s);
  absl::StatusOr<Caller> caller = Authenticate(request, "GetShadowReport");
  if (!caller.ok()) return Error(caller.status());
  return Answer(api_.GetShadowReport(*caller));
}

HttpAnswer HttpApi::KillSwitches(const HttpRequest& request) {
  if (absl::Status s = CheckParams(request.params, {}); !s.ok()) return Error(s);
  const bool set = request.method == "POST";
  absl::StatusOr<Caller> caller = Authenticate(request, set ? "SetKillSwitch" : "ListKillSwitches");
  if (!caller.ok()) return Error(caller.status());
  if (!set) return Json(api_.ListKillSwitches(*caller));
  v1::SetKillSwitchRequest parsed;
  if (absl::Status s = ParseJson(request.body, &parsed); !s.ok()) return Error(s);
  return Answer(api_.SetKillSwitch(*caller, parsed));
}

HttpAnswer HttpApi::Watch(const HttpRequest& request) {
  if (absl::Status s = CheckParams(request.params, {"lane", "tenant", "after", "view"}); !s.ok()) {
    return Error(s);
  }
  v1::WatchCasesRequest filter;
  filter.set_lane(std::string(Param(request.params, "lane")));
  filter.set_tenant_id(std::string(Param(request.params, "tenant")));
  if (const absl::string_view view = Param(request.params, "view"); view == "summary") {
    filter.set_view(v1::CASE_VIEW_SUMMARY);
  } else if (!view.empty() && view != "full") {
    return Error(absl::InvalidArgumentError(
        absl::StrCat("view: '", view, "' is not a view (full or summary)")));
  }
  std::optional<uint64_t> after;
  absl::string_view resume = request.Header("Last-Event-ID");
  const char* resume_from = "Last-Event-ID";
  if (resume.empty()) {
    resume = Param(request.params, "after");
    resume_from = "after";
  }
  if (!resume.empty()) {
    uint64_t n = 0;
    if (!absl::SimpleAtoi(resume, &n)) {
      return Error(absl::InvalidArgumentError(
          absl::StrCat(resume_from, ": '", resume, "' is not an event id (a sequence number)")));
    }
    after = n;
  }
  if (absl::Status s = cases::CaseStore::CheckWatchFilter(filter); !s.ok()) return Error(s);
  absl::StatusOr<Caller> caller = Authenticate(request, "WatchCases");
  if (!caller.ok()) return Error(caller.status());
  if (stopping_.load(std::memory_order_relaxed)) {
    return Error(absl::UnavailableError("the server is shutting down"));
  }
  if (streams_.fetch_add(1, std::memory_order_relaxed) >= options_.max_streams) {
    streams_.fetch_sub(1, std::memory_order_relaxed);
    return Error(absl::ResourceExhaustedError(
        absl::StrCat("watchers: ", options_.max_streams,
                     " watch streams are open over HTTP (half of --http-threads)")));
  }
  absl::StatusOr<WatcherQuota::Slot> slot = api_.OpenWatch(*caller, filter);
  if (!slot.ok()) {
    streams_.fetch_sub(1, std::memory_order_relaxed);
    return Error(slot.status());
  }
  HttpAnswer answer;
  answer.content_type = "text/event-stream";
  answer.headers.emplace_back("Cache-Control", "no-cache");
  answer.stream = std::make_unique<WatchStream>(*this, *std::move(slot), filter,
                                                api_.identity().Sees(*caller), after);
  return answer;
}

HttpAnswer HttpApi::Metrics(const HttpRequest& request) {
  if (absl::Status s = CheckParams(request.params, {}); !s.ok()) return Error(s);
  absl::StatusOr<Caller> caller = Authenticate(request, "Metrics");
  if (!caller.ok()) return Error(caller.status());
  // The metrics are not kept per tenant: with an access policy, admins only (as GetStats).
  if (!api_.identity().Sees(*caller).all()) {
    return Error(absl::PermissionDeniedError(absl::StrCat(
        caller->principal().subject(), " is not an admin: only admins read /metrics")));
  }
  HttpAnswer answer;
  answer.content_type = "text/plain; version=0.0.4; charset=utf-8";
  answer.body = RenderPrometheus(api_.service().Metrics());
  return answer;
}

}  // namespace agate::server
