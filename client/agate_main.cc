// agate: the command line. `agate help` lists the commands.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/case_report.h"
#include "client/client.h"
#include "client/grpc_status.h"
#include "client/offline_eval.h"
#include "client/policy_test.h"
#include "common/command_line.h"
#include "common/json_string.h"
#include "common/proto_json.h"
#include "common/proto_time.h"
#include "engine/access_policy.h"
#include "engine/matrix.h"
#include "grpcpp/grpcpp.h"
#include "service/service.h"
#include "service/shadow_report.h"
#include "store/decision_log.h"

namespace agate::cli {
namespace {

constexpr char kUsage[] = R"(usage: agate <command> [flags]

commands:
  eval  --matrix FILE | --server ADDR [--timeout D] [--fail-open]
        reads one EvaluateRequest per line (proto3 JSON) on stdin, writes one EvaluateResponse
        per line; a refused, malformed or blank line prints {"error":{"code":...,"message":...}}
        and the run goes on. Offline every line is evaluated (no idempotency: sample files reuse
        request_ids); cases and count() windows carry from line to line as in the server
  check FILE...
        prints FILE:LINE:COL: error|warning: ... for each matrix or access policy; exit 1 on any
        error
  test  [--junit FILE] [--require-coverage] PATH...
        runs the policy tests of each PATH (a file, or a folder searched for *_test.yaml; default
        .): prints FILE:LINE: test NAME: ... per failing test, "N passed, M failed", then the
        matrix's lanes and triggers no test fired. Exit 1 on a failure (or, with
        --require-coverage, anything not covered), 2 on a file error. docs/matrix.md has the format
  shadow --live FILE --candidate FILE --requests FILE [--span D] [--json]
        evaluates each request (the eval input format) against both matrices, each with its own
        cases and count() windows, and reports the verdict changes, the triggers that changed and
        the workload the candidate creates per lane; the input is taken as D of traffic (default
        1h). Exit 2 on a file error
  shadow --server ADDR [--json]
        the same report from a server running with --shadow-matrix, over the requests since its
        matrices were loaded, with the lanes' measured times to decision and the owners' backlog
  ack   --server ADDR --case ID --decision approve|reject|resolve [--comment T] [--approver NAME]
        --approver is for development mode (--auth none); with an access policy the approver
        is the verified caller (--token)
  cases --server ADDR [--state S] [--lane L] [--tenant T] [--owner O] [--page-size N] [--all]
  watch --server ADDR [--lane L] [--tenant T] [--count N] [--for D] [--batch-window D]
        [--summary]
        --batch-window: the server sends at most one message per window (a console following
        many cases); each event is still printed on a line of its own
        --summary: each case without its evidence, history and request ids (fewer bytes)
  kill  --server ADDR --tenant T [--agent A | --workflow W | --credential C] --reason TEXT
        stops every action of the tenant (or of one agent, workflow or credential of it): DENY
        until an admin lifts it; admins only
  kill  --server ADDR --list
  unkill --server ADDR --tenant T [--agent A | --workflow W | --credential C]
  stats --server ADDR [--json] [--metrics]
        per trigger: fired, open, how cases ended, median time to decision; --metrics adds every
        counter and gauge of the server
  report --server ADDR [--since D] [--json]
        per trigger, over the cases opened in the last D (default 7d) that the caller may see:
        fired, how the cases ended, approval rate, median time to decision; names the triggers
        approved in more than 95% of at least 20 approved or rejected cases: candidates to relax
  health --server ADDR [--timeout D] [--service NAME]
        asks the server's grpc.health.v1 Health/Check (service agate.v1.Agate unless --service;
        "" for the server as a whole) over a new connection: prints one line, exit 0 when it is
        SERVING, 1 otherwise. A liveness probe: `agate health --server unix:/run/agate/agate.sock`
  verify-log DIR
        checks the decision log's hash chain in DIR (<data-dir>/decisions); exit 1 at the first
        break, printed as FILE:LINE: ...

ADDR is host:port or unix:PATH. Every command with --server also takes --tls-ca FILE (the
server's CAs: TLS), --tls-cert FILE --tls-key FILE (mutual TLS), --token JWT or --token-file FILE
(sent as `authorization: Bearer`). `agate <command> --help` shows a command's flags.
)";

std::string ErrorLine(const absl::Status& status) {
  return absl::StrCat(R"({"error":{"code":")", absl::StatusCodeToString(status.code()),
                      R"(","message":")", JsonEscape(status.message()), R"("}})");
}

int Fail(const absl::Status& status) {
  std::cerr << "agate: " << absl::StatusCodeToString(status.code()) << ": " << status.message()
            << "\n";
  return 1;
}

int Usage(absl::string_view message) {
  std::cerr << "agate: " << message << "\n" << kUsage;
  return 2;
}

absl::StatusOr<std::unique_ptr<client::Client>> Connect(const CommandLine& cl) {
  std::optional<std::string> server = cl.Value("server");
  if (!server.has_value()) return absl::InvalidArgumentError("--server ADDR is required");
  absl::StatusOr<absl::Duration> timeout = cl.Duration("timeout", absl::Seconds(5));
  if (!timeout.ok()) return timeout.status();
  std::string token = cl.Value("token").value_or("");
  if (std::optional<std::string> file = cl.Value("token-file")) {
    std::ifstream in(*file);
    if (!in) return absl::NotFoundError(absl::StrCat("--token-file ", *file, ": cannot be read"));
    std::getline(in, token);
  }
  return client::Client::Create({.target = *server,
                                 .timeout = *timeout,
                                 .failure_mode = cl.Has("fail-open")
                                                     ? client::FailureMode::kFailOpen
                                                     : client::FailureMode::kFailClosed,
                                 .tls_ca = cl.Value("tls-ca").value_or(""),
                                 .tls_cert = cl.Value("tls-cert").value_or(""),
                                 .tls_key = cl.Value("tls-key").value_or(""),
                                 .token = std::move(token)});
}

// --- eval ------------------------------------------------------------------------------------

int Eval(const CommandLine& cl) {
  const bool offline = cl.Value("matrix").has_value();
  if (offline == cl.Value("server").has_value()) {
    return Usage("eval needs exactly one of --matrix FILE or --server ADDR");
  }
  std::unique_ptr<service::Service> service;
  std::unique_ptr<client::Client> remote;
  if (offline) {
    absl::StatusOr<std::shared_ptr<const engine::Matrix>> matrix =
        client::LoadMatrixReporting(*cl.Value("matrix"), std::cerr);
    if (!matrix.ok()) return 1;
    absl::StatusOr<std::unique_ptr<service::Service>> created =
        client::NewOfflineService(*matrix, RealClock());
    if (!created.ok()) return Fail(created.status());
    service = *std::move(created);
  } else {
    absl::StatusOr<std::unique_ptr<client::Client>> c = Connect(cl);
    if (!c.ok()) return Fail(c.status());
    remote = *std::move(c);
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    // Every input line gets its output line, a blank one too, so that answers pair with
    // requests by line number.
    absl::StatusOr<v1::EvaluateRequest> request = client::ParseRequestJson(line);
    absl::Status status = request.status();
    v1::EvaluateResponse response;
    if (status.ok()) {
      if (service != nullptr) {
        status = service->Evaluate(*request, &response);
      } else {
        absl::StatusOr<v1::EvaluateResponse> r = remote->Evaluate(*request);
        if (r.ok()) response = *std::move(r);
        status = r.status();
      }
    }
    std::cout << (status.ok() ? ToJson(response) : ErrorLine(status)) << std::endl;
  }
  return 0;
}

// --- check -----------------------------------------------------------------------------------

// IsAccessPolicy tells a policy file from a matrix by its keys (an unreadable file is a matrix:
// the matrix loader reports it).
bool IsAccessPolicy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream text;
  text << in.rdbuf();
  return engine::LooksLikeAccessPolicy(text.str());
}

int Check(const CommandLine& cl) {
  if (cl.positional().empty()) return Usage("check needs at least one matrix or policy FILE");
  bool any_error = false;
  for (const std::string& path : cl.positional()) {
    std::vector<engine::Diagnostic> diagnostics;
    if (IsAccessPolicy(path)) {
      absl::StatusOr<std::shared_ptr<const engine::AccessPolicy>> p =
          engine::LoadAccessPolicyFile(path, &diagnostics);
      for (const engine::Diagnostic& d : diagnostics) std::cout << d.ToString() << "\n";
      if (!p.ok()) {
        any_error = true;
      } else {
        std::cerr << path << ": ok (access policy: " << (*p)->agents().size() << " agents, "
                  << (*p)->operators().size() << " operator groups, " << (*p)->admin_count()
                  << " admins, " << (*p)->issuers().size() << " issuers, " << diagnostics.size()
                  << " warnings)\n";
      }
      continue;
    }
    absl::StatusOr<std::shared_ptr<const engine::Matrix>> m =
        engine::LoadMatrixFile(path, &diagnostics);
    for (const engine::Diagnostic& d : diagnostics) std::cout << d.ToString() << "\n";
    if (!m.ok()) {
      any_error = true;
    } else {
      std::cerr << path << ": ok (" << (*m)->lanes().size() << " lanes, " << (*m)->triggers().size()
                << " triggers, " << diagnostics.size() << " warnings)\n";
    }
  }
  return any_error ? 1 : 0;
}

// --- test, shadow ----------------------------------------------------------------------------

int Test(const CommandLine& cl) {
  std::vector<std::string> paths = cl.positional();
  if (paths.empty()) paths.push_back(".");
  std::vector<engine::Diagnostic> diagnostics;
  absl::StatusOr<std::vector<client::PolicyTestFile>> files =
      client::LoadPolicyTests(paths, &diagnostics);
  for (const engine::Diagnostic& d : diagnostics) std::cerr << d.ToString() << "\n";
  if (!files.ok()) return 2;
  const client::PolicyTestReport report = client::RunPolicyTests(*files);
  std::cout << report.Text() << std::flush;
  if (std::optional<std::string> junit = cl.Value("junit")) {
    std::ofstream out(*junit, std::ios::binary | std::ios::trunc);
    out << report.JUnit();
    out.close();
    if (!out) {
      std::cerr << "agate test: --junit " << *junit << ": cannot be written\n";
      return 2;
    }
  }
  if (report.failed > 0) return 1;
  if (cl.Has("require-coverage") && !report.uncovered.empty()) {
    std::cout << "coverage required: " << report.uncovered.size()
              << " lanes and triggers not covered" << std::endl;
    return 1;
  }
  return 0;
}

// ShadowFromServer prints the report of a server running with --shadow-matrix.
int ShadowFromServer(const CommandLine& cl) {
  for (const char* flag : {"live", "candidate", "requests", "span"}) {
    if (cl.Value(flag).has_value()) {
      return Usage(absl::StrCat("shadow --server reads the server's report: --", flag,
                                " is for the offline shadow"));
    }
  }
  absl::StatusOr<std::unique_ptr<client::Client>> c = Connect(cl);
  if (!c.ok()) return Fail(c.status());
  std::unique_ptr<grpc::ClientContext> context = (*c)->NewContext();
  v1::ShadowReport report;
  const absl::Status status = client::FromGrpcStatus(
      (*c)->stub().GetShadowReport(context.get(), v1::GetShadowReportRequest(), &report));
  if (!status.ok()) return Fail(status);
  std::cout << (cl.Has("json") ? service::ShadowReport::RenderJson(report) + "\n"
                               : service::ShadowReport::RenderText(report))
            << std::flush;
  return 0;
}

int Shadow(const CommandLine& cl) {
  if (cl.Value("server").has_value()) return ShadowFromServer(cl);
  for (const char* flag : {"live", "candidate", "requests"}) {
    if (!cl.Value(flag).has_value()) return Usage(absl::StrCat("shadow needs --", flag, " FILE"));
  }
  absl::StatusOr<absl::Duration> span = cl.Duration("span", absl::Hours(1));
  if (!span.ok() || *span <= absl::ZeroDuration()) {
    return Usage("--span must be a positive duration, e.g. 1h or 24h");
  }
  std::shared_ptr<const engine::Matrix> matrices[2];
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<std::shared_ptr<const engine::Matrix>> m =
        client::LoadMatrixReporting(*cl.Value(i == 0 ? "live" : "candidate"), std::cerr);
    if (!m.ok()) return 2;
    matrices[i] = *std::move(m);
  }
  const std::string path = *cl.Value("requests");
  int64_t lines = 0;
  {
    std::ifstream count(path, std::ios::binary);
    if (!count) {
      std::cerr << path << ": error: cannot read: " << std::strerror(errno) << "\n";
      return 2;
    }
    std::string line;
    while (std::getline(count, line)) {
      if (!absl::StripAsciiWhitespace(line).empty()) ++lines;
    }
  }
  std::ifstream in(path, std::ios::binary);
  absl::StatusOr<service::ShadowReport> report =
      client::RunOfflineShadow(matrices[0], matrices[1], in, path, *span, lines);
  if (!report.ok()) {
    std::cerr << report.status().message() << "\n";
    return 2;
  }
  std::cout << (cl.Has("json") ? report->Json(*span) + "\n" : report->Text(*span)) << std::flush;
  return 0;
}

// --- ack, cases, watch, stats ----------------------------------------------------------------

int Ack(const CommandLine& cl) {
  absl::StatusOr<std::unique_ptr<client::Client>> c = Connect(cl);
  if (!c.ok()) return Fail(c.status());
  const std::string decision = absl::AsciiStrToLower(cl.Value("decision").value_or(""));
  static const std::map<std::string, v1::Decision> kDecisions = {{"approve", v1::DECISION_APPROVE},
                                                                 {"reject", v1::DECISION_REJECT},
                                                                 {"resolve", v1::DECISION_RESOLVE}};
  auto d = kDecisions.find(decision);
  if (d == kDecisions.end()) return Usage("--decision must be approve, reject or resolve");
  v1::AcknowledgeRequest request;
  request.set_case_id(cl.Value("case").value_or(""));
  request.set_decision(d->second);
  request.set_comment(cl.Value("comment").value_or(""));
  std::unique_ptr<grpc::ClientContext> context = (*c)->NewContext();
  if (std::optional<std::string> approver = cl.Value("approver")) {
    context->AddMetadata("x-agate-approver", *approver);
  }
  v1::AcknowledgeResponse response;
  const absl::Status status =
      client::FromGrpcStatus((*c)->stub().Acknowledge(context.get(), request, &response));
  if (!status.ok()) return Fail(status);
  std::cout << ToJson(response.case_()) << std::endl;
  return 0;
}

int Cases(const CommandLine& cl) {
  absl::StatusOr<std::unique_ptr<client::Client>> c = Connect(cl);
  if (!c.ok()) return Fail(c.status());
  v1::ListCasesRequest request;
  if (std::optional<std::string> state = cl.Value("state")) {
    v1::CaseState parsed;
    if (!v1::CaseState_Parse(absl::StrCat("CASE_STATE_", absl::AsciiStrToUpper(*state)), &parsed)) {
      return Usage("--state must be open, approved, rejected, resolved or expired");
    }
    request.set_state(parsed);
  }
  request.set_lane(cl.Value("lane").value_or(""));
  request.set_tenant_id(cl.Value("tenant").value_or(""));
  request.set_owner(cl.Value("owner").value_or(""));
  absl::StatusOr<int64_t> page = cl.Int("page-size", 0);
  if (!page.ok()) return Usage(page.status().message());
  request.set_page_size(static_cast<int32_t>(std::min<int64_t>(*page, 1 << 30)));
  for (;;) {
    std::unique_ptr<grpc::ClientContext> context = (*c)->NewContext();
    v1::ListCasesResponse response;
    const absl::Status status =
        client::FromGrpcStatus((*c)->stub().ListCases(context.get(), request, &response));
    if (!status.ok()) return Fail(status);
    for (const v1::Case& one : response.cases()) std::cout << ToJson(one) << "\n";
    if (!cl.Has("all") || response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  std::cout.flush();
  return 0;
}

int Watch(const CommandLine& cl) {
  absl::StatusOr<std::unique_ptr<client::Client>> c = Connect(cl);
  if (!c.ok()) return Fail(c.status());
  absl::StatusOr<int64_t> count = cl.Int("count", 0);
  if (!count.ok()) return Usage(count.status().message());
  absl::StatusOr<absl::Duration> duration = cl.Duration("for", absl::InfiniteDuration());
  if (!duration.ok()) return Usage(duration.status().message());
  absl::StatusOr<absl::Duration> window = cl.Duration("batch-window", absl::ZeroDuration());
  if (!window.ok()) return Usage(window.status().message());
  v1::WatchCasesRequest request;
  request.set_lane(cl.Value("lane").value_or(""));
  request.set_tenant_id(cl.Value("tenant").value_or(""));
  if (*window > absl::ZeroDuration()) *request.mutable_batch_window() = ToDurationProto(*window);
  if (cl.Has("summary")) request.set_view(v1::CASE_VIEW_SUMMARY);
  std::unique_ptr<grpc::ClientContext> context = (*c)->NewContext();
  context->set_deadline(*duration == absl::InfiniteDuration()
                            ? std::chrono::system_clock::time_point::max()
                            : absl::ToChronoTime(absl::Now() + *duration));
  std::unique_ptr<grpc::ClientReader<v1::CaseEvent>> reader =
      (*c)->stub().WatchCases(context.get(), request);
  v1::CaseEvent message;
  int64_t seen = 0;
  // One line per event: a batch's `more` are printed as events of their own.
  auto print = [&](const v1::CaseEvent& event) {
    std::cout << ToJson(event) << std::endl;
    return *count > 0 && ++seen >= *count;
  };
  while (reader->Read(&message)) {
    google::protobuf::RepeatedPtrField<v1::CaseEvent> more = std::move(*message.mutable_more());
    message.clear_more();
    bool enough = print(message);
    for (int i = 0; i < more.size() && !enough; ++i) enough = print(more[i]);
    if (enough) {
      context->TryCancel();
      break;
    }
  }
  const absl::Status status = client::FromGrpcStatus(reader->Finish());
  const bool expected_end =
      (*count > 0 && seen >= *count) || status.code() == absl::StatusCode::kDeadlineExceeded;
  return status.ok() || expected_end ? 0 : Fail(status);
}

std::string Millis(const google::protobuf::Duration& d) {
  return absl::FormatDuration(absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos()));
}

// Age prints d to the second.
std::string Age(const google::protobuf::Duration& d) {
  return absl::FormatDuration(absl::Seconds(d.seconds()));
}

int Stats(const CommandLine& cl) {
  absl::StatusOr<std::unique_ptr<client::Client>> c = Connect(cl);
  if (!c.ok()) return Fail(c.status());
  std::unique_ptr<grpc::ClientContext> context = (*c)->NewContext();
  v1::GetStatsResponse response;
  const absl::Status status = client::FromGrpcStatus(
      (*c)->stub().GetStats(context.get(), v1::GetStatsRequest(), &response));
  if (!status.ok()) return Fail(status);
  if (cl.Has("json")) {
    std::cout << ToJson(response) << std::endl;
    return 0;
  }
  std::cout << absl::StrFormat("%-32s %-10s %7s %5s %8s %8s %8s %7s %s\n", "TRIGGER", "LANE",
                               "FIRED", "OPEN", "APPROVED", "REJECTED", "RESOLVED", "EXPIRED",
                               "MEDIAN-TIME-TO-DECISION");
  for (const v1::TriggerStats& t : response.triggers()) {
    std::cout << absl::StrFormat(
        "%-32s %-10s %7d %5d %8d %8d %8d %7d %s\n", t.trigger_id(), t.lane(), t.fired(), t.open(),
        t.approved(), t.rejected(), t.resolved(), t.expired(),
        t.has_median_time_to_decision() ? Millis(t.median_time_to_decision()) : "-");
  }
  if (response.owners_size() > 0) {
    // The review load: who holds how many open cases, and for how long.
    std::cout << absl::StrFormat("\n%-24s %-16s %6s %12s %12s\n", "OWNER", "TENANT", "OPEN",
                                 "MEDIAN-AGE", "OLDEST");
    for (const v1::OwnerLoad& o : response.owners()) {
      std::cout << absl::StrFormat("%-24s %-16s %6d %12s %12s\n", o.owner(), o.tenant_id(),
                                   o.open(), Age(o.median_age()), Age(o.oldest_age()));
    }
    std::cout << "\n";
  }
  std::cout << "open cases: " << response.open_cases() << "; decisions:";
  for (const char* v : {"ALLOW", "PARK_ITEM", "HOLD", "SAFE_MODE", "BLOCK", "DENY"}) {
    auto it = response.decisions().find(v);
    std::cout << " " << v << "=" << (it == response.decisions().end() ? 0 : it->second);
  }
  std::cout << std::endl;
  if (cl.Has("metrics")) {
    // Every counter and gauge, as the metrics endpoint names them.
    for (const v1::Metric& m : response.metrics()) {
      std::vector<std::string> labels;
      for (const auto& [k, v] : m.labels()) labels.push_back(absl::StrCat(k, "=\"", v, "\""));
      std::sort(labels.begin(), labels.end());
      std::cout << m.name() << (labels.empty() ? "" : "{" + absl::StrJoin(labels, ",") + "}") << " "
                << m.value() << "\n";
    }
  }
  return 0;
}

// Report prints what became of each trigger's recent cases (client/case_report.h).
int Report(const CommandLine& cl) {
  absl::StatusOr<absl::Duration> since = client::ParseSince(cl.Value("since").value_or("7d"));
  if (!since.ok()) return Usage(since.status().message());
  absl::StatusOr<std::unique_ptr<client::Client>> c = Connect(cl);
  if (!c.ok()) return Fail(c.status());
  absl::StatusOr<client::CaseReport> report = client::FetchCaseReport(**c, *since, absl::Now());
  if (!report.ok()) return Fail(report.status());
  std::cout << (cl.Has("json") ? report->Json() + "\n" : report->Text()) << std::flush;
  return 0;
}

// --- health ----------------------------------------------------------------------------------

// Health checks that the server answers on a new connection and is serving (a liveness probe).
int Health(const CommandLine& cl) {
  const std::string server = cl.Value("server").value_or("");
  absl::StatusOr<std::unique_ptr<client::Client>> c = Connect(cl);
  if (!c.ok()) return Fail(c.status());
  const std::string service = cl.Value("service").value_or("agate.v1.Agate");
  const absl::Time start = absl::Now();
  const absl::Status status = (*c)->Health(service);
  const std::string took =
      absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(1)));
  if (!status.ok()) {
    std::cout << "agate health: " << server << ": " << absl::StatusCodeToString(status.code())
              << ": " << status.message() << " (" << took << ")" << std::endl;
    return 1;
  }
  std::cout << "agate health: " << server << ": SERVING (" << took << ")" << std::endl;
  return 0;
}

// --- kill, unkill ------------------------------------------------------------------------------

// Kill engages (or with engaged = false lifts) the kill switch the flags name; with --list it
// prints the engaged ones.
int SetKill(const CommandLine& cl, bool engaged) {
  absl::StatusOr<std::unique_ptr<client::Client>> c = Connect(cl);
  if (!c.ok()) return Fail(c.status());
  if (engaged && cl.Has("list")) {
    std::unique_ptr<grpc::ClientContext> context = (*c)->NewContext();
    v1::ListKillSwitchesResponse response;
    const absl::Status status = client::FromGrpcStatus(
        (*c)->stub().ListKillSwitches(context.get(), v1::ListKillSwitchesRequest(), &response));
    if (!status.ok()) return Fail(status);
    for (const v1::KillSwitch& k : response.switches()) std::cout << ToJson(k) << "\n";
    std::cout.flush();
    return 0;
  }
  v1::SetKillSwitchRequest request;
  request.set_engaged(engaged);
  request.set_tenant_id(cl.Value("tenant").value_or(""));
  request.set_reason(cl.Value("reason").value_or(""));
  int scopes = 0;
  for (const auto& [flag, scope] : std::vector<std::pair<std::string, v1::KillScope>>{
           {"agent", v1::KILL_SCOPE_AGENT},
           {"workflow", v1::KILL_SCOPE_WORKFLOW},
           {"credential", v1::KILL_SCOPE_CREDENTIAL}}) {
    if (std::optional<std::string> value = cl.Value(flag)) {
      request.set_scope(scope);
      request.set_value(*value);
      ++scopes;
    }
  }
  if (scopes > 1) return Usage("give at most one of --agent, --workflow, --credential");
  if (scopes == 0) request.set_scope(v1::KILL_SCOPE_TENANT);
  std::unique_ptr<grpc::ClientContext> context = (*c)->NewContext();
  v1::KillSwitch response;
  const absl::Status status =
      client::FromGrpcStatus((*c)->stub().SetKillSwitch(context.get(), request, &response));
  if (!status.ok()) return Fail(status);
  std::cout << ToJson(response) << std::endl;
  return 0;
}

int Kill(const CommandLine& cl) { return SetKill(cl, /*engaged=*/true); }
int Unkill(const CommandLine& cl) { return SetKill(cl, /*engaged=*/false); }

// --- verify-log ------------------------------------------------------------------------------

int VerifyLog(const CommandLine& cl) {
  if (cl.positional().size() != 1) return Usage("verify-log needs exactly one DIR");
  const std::string& dir = cl.positional()[0];
  absl::StatusOr<store::VerifyResult> r = store::VerifyLog(dir);
  if (!r.ok()) {
    if (r.status().code() != absl::StatusCode::kDataLoss) return Fail(r.status());
    std::cout << r.status().message() << std::endl;
    return 1;
  }
  std::cout << absl::StrFormat("verify-log: %s: %d record%s in %d file%s, chain intact", dir,
                               r->records, r->records == 1 ? "" : "s", r->files,
                               r->files == 1 ? "" : "s");
  if (!r->anchor.empty()) {
    std::cout << "; it starts at " << r->anchor << ": older files were removed";
  }
  std::cout << "\n";
  if (r->records > 0) {
    std::cout << "verify-log: head seq " << r->last_seq << " hash " << r->head << "\n";
  }
  std::cout.flush();
  return 0;
}

struct Command {
  int (*run)(const CommandLine&);
  FlagSpec flags;
};

const std::map<std::string, Command>& Commands() {
  static const auto* kCommands = new std::map<std::string, Command>{
      {"eval", {Eval, {.values = {"matrix", "server", "timeout"}, .booleans = {"fail-open"}}}},
      {"check", {Check, {}}},
      {"test", {Test, {.values = {"junit"}, .booleans = {"require-coverage"}}}},
      {"shadow",
       {Shadow,
        {.values = {"live", "candidate", "requests", "span", "server", "timeout"},
         .booleans = {"json"}}}},
      {"ack",
       {Ack,
        {.values = {"server", "timeout", "case", "decision", "approver", "comment"},
         .booleans = {}}}},
      {"cases",
       {Cases,
        {.values = {"server", "timeout", "state", "lane", "tenant", "owner", "page-size"},
         .booleans = {"all"}}}},
      {"watch",
       {Watch,
        {.values = {"server", "timeout", "lane", "tenant", "count", "for", "batch-window"},
         .booleans = {"summary"}}}},
      {"stats", {Stats, {.values = {"server", "timeout"}, .booleans = {"json", "metrics"}}}},
      {"report", {Report, {.values = {"server", "timeout", "since"}, .booleans = {"json"}}}},
      {"kill",
       {Kill,
        {.values = {"server", "timeout", "tenant", "agent", "workflow", "credential", "reason"},
         .booleans = {"list"}}}},
      {"unkill",
       {Unkill,
        {.values = {"server", "timeout", "tenant", "agent", "workflow", "credential"},
         .booleans = {}}}},
      {"health", {Health, {.values = {"server", "timeout", "service"}, .booleans = {}}}},
      {"verify-log", {VerifyLog, {}}},
  };
  return *kCommands;
}

int Main(const std::vector<std::string>& args) {
  if (args.empty()) return Usage("a command is required");
  if (args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::cout << kUsage;
    return 0;
  }
  auto it = Commands().find(args[0]);
  if (it == Commands().end()) return Usage(absl::StrCat("unknown command '", args[0], "'"));
  FlagSpec flags = it->second.flags;
  flags.booleans.push_back("help");
  if (std::find(flags.values.begin(), flags.values.end(), "server") != flags.values.end()) {
    // Every command that talks to a server can do it over TLS and with a token.
    for (const char* flag : {"tls-ca", "tls-cert", "tls-key", "token", "token-file"}) {
      flags.values.push_back(flag);
    }
  }
  absl::StatusOr<CommandLine> cl =
      CommandLine::Parse(std::vector<std::string>(args.begin() + 1, args.end()), flags);
  if (!cl.ok()) return Usage(cl.status().message());
  if (cl->Has("help")) {
    std::cout << kUsage;
    return 0;
  }
  if (args[0] != "check" && args[0] != "verify-log" && args[0] != "test" &&
      !cl->positional().empty()) {
    return Usage(absl::StrCat("unexpected argument '", cl->positional()[0], "'"));
  }
  return it->second.run(*cl);
}

}  // namespace
}  // namespace agate::cli

int main(int argc, char** argv) {
  return agate::cli::Main(std::vector<std::string>(argv + 1, argv + argc));
}
