// HttpApi: the agate.v1 methods over HTTP/JSON, plus /metrics, /healthz and /readyz
// (docs/operations.md, "HTTP API and metrics"). A thin adapter, as GrpcService is: it decodes
// proto3 JSON and the query, authenticates the `Authorization: Bearer` header, calls server::Api
// (the same function per method as gRPC: the same authorization, audit and errors) and encodes
// the answer as proto3 JSON. It knows nothing of sockets: server/http_server.h serves it.
//
//   POST /v1/evaluate                   EvaluateRequest -> EvaluateResponse
//   GET  /v1/cases?state=&lane=&tenant=&owner=&page_size=&page_token=   ListCasesResponse
//   GET  /v1/cases/{id}                 GetCaseResponse
//   POST /v1/cases/{id}:acknowledge     AcknowledgeRequest -> AcknowledgeResponse
//   GET  /v1/stats                      GetStatsResponse
//   GET  /v1/shadow                     ShadowReport (FAILED_PRECONDITION without --shadow-matrix)
//   GET  /v1/cases:watch?lane=&tenant=&after=   server-sent events, one CaseEvent each
//   GET  /v1/killswitches, POST /v1/killswitches   ListKillSwitches, SetKillSwitch
//   GET  /v1/whoami                     what the caller may do (Api::WhoAmI), for the console
//   GET  /metrics (Prometheus text 0.0.4), /healthz, /readyz
//   GET  / and the console's other files (ConsoleFiles), when options.console is set
//
// An error is {"code": <gRPC code>, "status": "NOT_FOUND", "message": "..."} with the HTTP
// status HttpStatusOf (server/status.h) gives the code. An unknown path is 404, a known one with
// another method 405 (with Allow).
//
// Watch streams hold a place of Api's WatcherQuota as gRPC's do, and also one of max_streams
// (each holds one of the HTTP server's threads while it is open). A stream sends a comment
// every heartbeat, so that a client that went away is noticed, and ends when Stop is called.
// It resumes after the Last-Event-ID header (or ?after=) from the EventHistory.
//
// Thread-safe.
#ifndef AGATE_SERVER_HTTP_API_H_
#define AGATE_SERVER_HTTP_API_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/api.h"
#include "server/console_files.h"
#include "server/event_history.h"

namespace agate::server {

// One request, as the HTTP server read it (views into its buffers, valid during Handle).
struct HttpRequest {
  absl::string_view method;
  absl::string_view path;
  std::vector<std::pair<absl::string_view, absl::string_view>> params;   // decoded query
  std::vector<std::pair<absl::string_view, absl::string_view>> headers;  // any case
  absl::string_view body;
  absl::string_view remote;
  int refused_status = 0;  // the server refused it before reading it (413, 400)

  // Header returns the first header named name (ASCII case-insensitive), "" if none.
  absl::string_view Header(absl::string_view name) const;
};

// A response body that is written as it comes (server-sent events).
class HttpStream {
 public:
  virtual ~HttpStream() = default;
  // Next waits a bounded time for data and writes it with write (false: the client is gone).
  // Returns false when the stream is over.
  virtual bool Next(const std::function<bool(absl::string_view)>& write) = 0;
};

struct HttpAnswer {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::unique_ptr<HttpStream> stream;  // not null: the body is this stream's
};

struct HttpApiOptions {
  int64_t max_request_bytes = 1 << 20;  // for the 413 message (the server enforces it)
  int64_t max_streams = 8;              // watch streams open at once over HTTP
  absl::Duration heartbeat = absl::Seconds(2);
  size_t history_events = 1024;  // EventHistory's capacity
  // The operator console's files, served at / (null: no console; / is 404 then).
  std::shared_ptr<const ConsoleFiles> console;
};

class HttpApi {
 public:
  // api must outlive this object.
  HttpApi(Api& api, HttpApiOptions options);
  ~HttpApi();

  // Handle answers one request.
  HttpAnswer Handle(const HttpRequest& request);

  // SetReady says whether /readyz answers 200 (serving) or 503 (starting, draining).
  void SetReady(bool ready) { ready_.store(ready, std::memory_order_relaxed); }
  // Stop ends every watch stream (within a heartbeat's wait) and refuses new ones.
  void Stop() { stopping_.store(true, std::memory_order_relaxed); }

  // streams returns the watch streams open now.
  int64_t streams() const { return streams_.load(std::memory_order_relaxed); }

 private:
  class WatchStream;

  HttpAnswer Evaluate(const HttpRequest& request);
  HttpAnswer Acknowledge(const HttpRequest& request, absl::string_view case_id);
  HttpAnswer GetCase(const HttpRequest& request, absl::string_view case_id);
  HttpAnswer ListCases(const HttpRequest& request);
  HttpAnswer GetStats(const HttpRequest& request);
  HttpAnswer WhoAmI(const HttpRequest& request);
  HttpAnswer Console(const HttpRequest& request);
  HttpAnswer GetShadowReport(const HttpRequest& request);
  HttpAnswer KillSwitches(const HttpRequest& request);
  HttpAnswer Watch(const HttpRequest& request);
  HttpAnswer Metrics(const HttpRequest& request);
  HttpAnswer Healthz(const HttpRequest& request);
  HttpAnswer Readyz(const HttpRequest& request);
  // Authenticate names the caller of method from the Authorization header (audited refusal).
  absl::StatusOr<Caller> Authenticate(const HttpRequest& request, absl::string_view method);

  Api& api_;
  const HttpApiOptions options_;
  EventHistory history_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> streams_{0};
};

// RenderPrometheus writes samples in the Prometheus text exposition format 0.0.4: one # HELP
// and # TYPE per family (samples of a family together, in their first appearance's order),
// label values and help text escaped.
std::string RenderPrometheus(const std::vector<service::MetricSample>& samples);

}  // namespace agate::server

#endif  // AGATE_SERVER_HTTP_API_H_
