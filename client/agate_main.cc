// agate: the command line. `agate help` lists the commands.
#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/client.h"
#include "common/command_line.h"
#include "engine/matrix.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "common/json_string.h"
#include "service/service.h"
#include "client/grpc_status.h"
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
        prints FILE:LINE:COL: error|warning: ... for each matrix; exit 1 on any error
  ack   --server ADDR --case ID --decision approve|reject|resolve --approver NAME [--comment T]
  cases --server ADDR [--state S] [--lane L] [--tenant T] [--owner O] [--page-size N] [--all]
  watch --server ADDR [--lane L] [--tenant T] [--count N] [--for D]
  stats --server ADDR [--json] [--metrics]
        per trigger: fired, open, how cases ended, median time to decision; --metrics adds every
        counter and gauge of the server
  verify-log DIR
        checks the decision log's hash chain in DIR (<data-dir>/decisions); exit 1 at the first
        break, printed as FILE:LINE: ...

ADDR is host:port or unix:PATH. `agate <command> --help` shows a command's flags.
)";

std::string ToJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(m, &out, options).ok()) return "{}";
  return out;
}

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
  return client::Client::Create({.target = *server,
                                 .timeout = *timeout,
                                 .failure_mode = cl.Has("fail-open")
                                                     ? client::FailureMode::kFailOpen
                                                     : client::FailureMode::kFailClosed});
}

void SetDeadline(grpc::ClientContext& context, const client::Client& c) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + c.options().timeout));
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
    std::vector<engine::Diagnostic> diagnostics;
    absl::StatusOr<std::shared_ptr<const engine::Matrix>> matrix =
        engine::LoadMatrixFile(*cl.Value("matrix"), &diagnostics);
    for (const engine::Diagnostic& d : diagnostics) {
      if (d.severity == engine::Severity::kError) std::cerr << d.ToString() << "\n";
    }
    if (!matrix.ok()) return 1;
    // Offline, each line is evaluated: sample files reuse request_ids. Cases and count()
    // windows carry from line to line as in the server.
    service::ServiceOptions options;
    options.idempotency.enabled = false;
    absl::StatusOr<std::unique_ptr<service::Service>> created =
        service::Service::Create(*matrix, RealClock(), options);
    if (!created.ok()) return Fail(created.status());
    service = *std::move(created);
  } else {
    absl::StatusOr<std::unique_ptr<client::Client>> c = Connect(cl);
    if (!c.ok()) return Fail(c.status());
    remote = *std::move(c);
  }
  google::protobuf::util::JsonParseOptions parse;
  std::string line;
  while (std::getline(std::cin, line)) {
    v1::EvaluateRequest request;
    absl::Status status;
    // Every input line gets its output line, a blank one too, so that answers pair with
    // requests by line number.
    const auto parsed = google::protobuf::util::JsonStringToMessage(line, &request, parse);
    if (absl::StripAsciiWhitespace(line).empty()) {
      status = absl::InvalidArgumentError("empty line: not an EvaluateRequest in JSON");
    } else if (!parsed.ok()) {
      status = absl::InvalidArgumentError(
          absl::StrCat("not an EvaluateRequest in JSON: ", parsed.message().as_string()));
    }
    v1::EvaluateResponse response;
    if (status.ok()) {
      if (service != nullptr) {
        status = service->Evaluate(request, &response);
      } else {
        absl::StatusOr<v1::EvaluateResponse> r = remote->Evaluate(request);
        if (r.ok()) response = *std::move(r);
        status = r.status();
      }
    }
    std::cout << (status.ok() ? ToJson(response) : ErrorLine(status)) << std::endl;
  }
  return 0;
}

// --- check -----------------------------------------------------------------------------------

int Check(const CommandLine& cl) {
  if (cl.positional().empty()) return Usage("check needs at least one matrix FILE");
  bool any_error = false;
  for (const std::string& path : cl.positional()) {
    std::vector<engine::Diagnostic> diagnostics;
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
  grpc::ClientContext context;
  SetDeadline(context, **c);
  if (std::optional<std::string> approver = cl.Value("approver")) {
    context.AddMetadata("x-agate-approver", *approver);
  }
  v1::AcknowledgeResponse response;
  const absl::Status status =
      client::FromGrpcStatus((*c)->stub().Acknowledge(&context, request, &response));
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
    grpc::ClientContext context;
    SetDeadline(context, **c);
    v1::ListCasesResponse response;
    const absl::Status status =
        client::FromGrpcStatus((*c)->stub().ListCases(&context, request, &response));
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
  v1::WatchCasesRequest request;
  request.set_lane(cl.Value("lane").value_or(""));
  request.set_tenant_id(cl.Value("tenant").value_or(""));
  grpc::ClientContext context;
  if (*duration != absl::InfiniteDuration()) {
    context.set_deadline(absl::ToChronoTime(absl::Now() + *duration));
  }
  std::unique_ptr<grpc::ClientReader<v1::CaseEvent>> reader =
      (*c)->stub().WatchCases(&context, request);
  v1::CaseEvent event;
  int64_t seen = 0;
  while (reader->Read(&event)) {
    std::cout << ToJson(event) << std::endl;
    if (*count > 0 && ++seen >= *count) {
      context.TryCancel();
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

int Stats(const CommandLine& cl) {
  absl::StatusOr<std::unique_ptr<client::Client>> c = Connect(cl);
  if (!c.ok()) return Fail(c.status());
  grpc::ClientContext context;
  SetDeadline(context, **c);
  v1::GetStatsResponse response;
  const absl::Status status =
      client::FromGrpcStatus((*c)->stub().GetStats(&context, v1::GetStatsRequest(), &response));
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
      std::cout << m.name() << (labels.empty() ? "" : "{" + absl::StrJoin(labels, ",") + "}")
                << " " << m.value() << "\n";
    }
  }
  return 0;
}

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
        {.values = {"server", "timeout", "lane", "tenant", "count", "for"}, .booleans = {}}}},
      {"stats", {Stats, {.values = {"server", "timeout"}, .booleans = {"json", "metrics"}}}},
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
  absl::StatusOr<CommandLine> cl =
      CommandLine::Parse(std::vector<std::string>(args.begin() + 1, args.end()), flags);
  if (!cl.ok()) return Usage(cl.status().message());
  if (cl->Has("help")) {
    std::cout << kUsage;
    return 0;
  }
  if (args[0] != "check" && args[0] != "verify-log" && !cl->positional().empty()) {
    return Usage(absl::StrCat("unexpected argument '", cl->positional()[0], "'"));
  }
  return it->second.run(*cl);
}

}  // namespace
}  // namespace agate::cli

int main(int argc, char** argv) {
  return agate::cli::Main(std::vector<std::string>(argv + 1, argv + argc));
}
