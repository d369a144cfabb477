#include "server/grpc_service.h"

#include <array>
#include <chrono>
#include <new>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/verdict.h"
#include "google/protobuf/arena.h"
#include "grpc/grpc.h"
#include "server/logging.h"
#include "server/status.h"
#include "server/watch_reactor.h"
#include "service/wire_request.h"
#include "spdlog/spdlog.h"

namespace agate::server {
namespace {

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// Parse decodes a request's bytes, or says why they are not a T (the message names the field
// when protobuf does, e.g. a string that is not UTF-8).
template <typename T>
absl::Status Parse(const grpc::ByteBuffer* bytes, T* message) {
  grpc::ByteBuffer copy(*bytes);  // Deserialize consumes it; the slices are shared
  TakeProtobufError();
  if (grpc::SerializationTraits<T>::Deserialize(&copy, message).ok()) return absl::OkStatus();
  const std::string why = TakeProtobufError();
  return absl::InvalidArgumentError(
      absl::StrCat("request: not a valid ", T::descriptor()->full_name(),
                   why.empty() ? " (malformed protobuf bytes)" : absl::StrCat(": ", why)));
}

// Answer serializes an OK value into *out, or finishes with the error.
template <typename T>
grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* context,
                                 const absl::StatusOr<T>& result, grpc::ByteBuffer* out) {
  if (!result.ok()) return Finish(context, result.status());
  bool own_buffer = false;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::SerializationTraits<T>::Serialize(*result, out, &own_buffer));
  return reactor;
}

// InFlightReactor finishes one Evaluate call and counts it out of the calls in flight when gRPC
// is done with it. It lives in the call's arena, as gRPC's own per-call objects do (no heap
// allocation per call), and its reactions are trivial, so it lets gRPC run OnDone inline as
// gRPC's DefaultReactor does: a reactor that does not would make every call's OnDone hop to a
// gRPC executor thread (docs/perf.md).
class InFlightReactor final : public grpc::ServerUnaryReactor {
 public:
  static InFlightReactor* New(grpc::CallbackServerContext* context,
                              std::atomic<int64_t>* in_flight) {
    void* memory = grpc_call_arena_alloc(context->c_call(), sizeof(InFlightReactor));
    return new (memory) InFlightReactor(in_flight);
  }
  void OnDone() override {
    in_flight_->fetch_sub(1, std::memory_order_relaxed);
    this->~InFlightReactor();  // the arena's memory goes with the call
  }
  void OnCancel() override {}
  // ServerReactor::InternalInlineable is marked "not API, for reactors with trivial reactions":
  // these are (an atomic decrement), and gRPC 1.51 is the version Debian 12 pins.
  bool InternalInlineable() override { return true; }

 private:
  explicit InFlightReactor(std::atomic<int64_t>* in_flight) : in_flight_(in_flight) {}
  std::atomic<int64_t>* const in_flight_;
};

// LogDue tells whether a rate-limited warning may be logged now (one per 10 s at most: logging
// every refusal would add to an overload), and takes that turn.
bool LogDue(std::atomic<int64_t>& next_log_ns) {
  const int64_t now = absl::GetCurrentTimeNanos();
  int64_t next = next_log_ns.load(std::memory_order_relaxed);
  return now >= next && next_log_ns.compare_exchange_strong(next, now + 10'000'000'000);
}

// FinishedWriteReactor ends a stream at once (a request that did not parse, or was refused).
class FinishedWriteReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  void OnDone() override { delete this; }
};

}  // namespace

absl::Status Admit(int64_t others_in_flight, int64_t max_in_flight,
                   std::chrono::system_clock::time_point deadline,
                   std::chrono::system_clock::time_point now) {
  if (max_in_flight > 0 && others_in_flight >= max_in_flight) {
    return absl::ResourceExhaustedError(absl::StrCat("server overloaded: ", others_in_flight,
                                                     " calls in flight (--max-in-flight ",
                                                     max_in_flight, ")"));
  }
  if (deadline <= now) {
    return absl::DeadlineExceededError("the call's deadline passed before it was evaluated");
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* GrpcService::Evaluate(grpc::CallbackServerContext* context,
                                                const grpc::ByteBuffer* request_bytes,
                                                grpc::ByteBuffer* response_bytes) {
  const int64_t others = in_flight_.fetch_add(1, std::memory_order_relaxed);
  grpc::ServerUnaryReactor* reactor = InFlightReactor::New(context, &in_flight_);
  absl::Status status =
      Admit(others, options_.max_in_flight, context->deadline(), std::chrono::system_clock::now());
  if (status.code() == absl::StatusCode::kResourceExhausted) CountShed();
  if (!status.ok()) {
    reactor->Finish(ToGrpcStatus(status));
    return reactor;
  }
  const absl::StatusOr<Caller> caller = Authenticate(context, "Evaluate");
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }

  // A retry (the same bytes again) is answered before anything is parsed (docs/perf.md).
  grpc::Slice slice;
  service::WireRequest wire;
  const bool scanned =
      request_bytes->TrySingleSlice(&slice).ok() &&
      service::WireRequest::Scan(
          absl::string_view(reinterpret_cast<const char*>(slice.begin()), slice.size()), &wire);
  thread_local std::string replayed;  // reused: a retry's answer costs one copy, into the slice
  if (scanned && identity_.MayEvaluate(*caller, wire.tenant_id, wire.agent_id).ok() &&
      service_.Replay(wire, &replayed)) {
    if (spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug("evaluate request_id={} tenant_id={} -> OK (replayed)",
                    absl::CHexEscape(wire.request_id), absl::CHexEscape(wire.tenant_id));
    }
    slice = grpc::Slice(replayed.data(), replayed.size());
    *response_bytes = grpc::ByteBuffer(&slice, 1);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  // The request and response live in an arena whose first block is this thread's (reused by
  // every call on it): parsing and building them allocates nothing (unless they outgrow 8 KiB),
  // and freeing them is the arena's end (docs/perf.md).
  thread_local std::array<char, 8192> arena_block;
  google::protobuf::ArenaOptions arena_options;
  arena_options.initial_block = arena_block.data();
  arena_options.initial_block_size = arena_block.size();
  google::protobuf::Arena arena(arena_options);
  v1::EvaluateRequest& request =
      *google::protobuf::Arena::CreateMessage<v1::EvaluateRequest>(&arena);
  v1::EvaluateResponse& response =
      *google::protobuf::Arena::CreateMessage<v1::EvaluateResponse>(&arena);
  std::string serialized;  // the response's bytes when the Service has them already
  status = Parse(request_bytes, &request);
  if (status.ok()) {
    status = Audited("Evaluate", identity_.MayEvaluate(*caller, request), caller->principal());
  }
  if (status.ok()) {
    status = service_.Evaluate(request, &response, &serialized,
                               caller->development() ? "" : caller->principal().subject(),
                               scanned ? &wire : nullptr);
    if (spdlog::should_log(spdlog::level::debug)) {
      // Ids are the caller's bytes: escaped, so that they cannot forge log lines.
      spdlog::debug("evaluate request_id={} tenant_id={} -> {} {} {}",
                    absl::CHexEscape(request.request_id()), absl::CHexEscape(request.tenant_id()),
                    status.ok() ? "OK" : status.ToString(),
                    serialized.empty() || response.verdict() != v1::VERDICT_UNSPECIFIED
                        ? std::string(engine::VerdictName(response.verdict()))
                        : std::string("(answered with stored bytes)"),
                    response.case_id());
    }
  }
  if (status.ok() && !serialized.empty()) {
    slice = grpc::Slice(serialized);
    *response_bytes = grpc::ByteBuffer(&slice, 1);
    reactor->Finish(grpc::Status::OK);
  } else if (status.ok()) {
    bool own_buffer = false;
    reactor->Finish(grpc::SerializationTraits<v1::EvaluateResponse>::Serialize(
        response, response_bytes, &own_buffer));
  } else {
    reactor->Finish(ToGrpcStatus(status));
  }
  return reactor;
}

void GrpcService::CountShed() {
  const uint64_t shed = service_.counters().shed_calls.fetch_add(1, std::memory_order_relaxed) + 1;
  if (LogDue(next_shed_log_ns_)) {
    spdlog::warn("overloaded: {} Evaluate calls shed since the start (--max-in-flight {})", shed,
                 options_.max_in_flight);
  }
}

absl::Status GrpcService::Audited(absl::string_view method, absl::Status status,
                                  const v1::Principal& principal) {
  if (status.code() == absl::StatusCode::kPermissionDenied ||
      status.code() == absl::StatusCode::kUnauthenticated) {
    service_.audit().Refusal(method, status, principal);
  }
  return status;
}

absl::StatusOr<Caller> GrpcService::Authenticate(grpc::CallbackServerContext* context,
                                                 absl::string_view method) {
  absl::StatusOr<Caller> caller = identity_.Authenticate(*context);
  if (!caller.ok()) {
    v1::Principal unknown;
    unknown.set_subject(std::string(absl::string_view(context->peer()).substr(0, 256)));
    return Audited(method, caller.status(), unknown);
  }
  return caller;
}

grpc::ServerUnaryReactor* GrpcService::Acknowledge(grpc::CallbackServerContext* context,
                                                   const grpc::ByteBuffer* request_bytes,
                                                   grpc::ByteBuffer* response) {
  constexpr absl::string_view kMethod = "Acknowledge";
  v1::AcknowledgeRequest request;
  if (absl::Status s = Parse(request_bytes, &request); !s.ok()) return Finish(context, s);
  absl::StatusOr<Caller> caller = Authenticate(context, kMethod);
  if (!caller.ok()) return Finish(context, caller.status());
  absl::StatusOr<cases::Actor> actor = identity_.Approver(*caller, *context, request);
  if (!actor.ok()) {
    return Finish(context, Audited(kMethod, actor.status(), caller->principal()));
  }
  const std::string who = actor->principal.subject();
  absl::StatusOr<v1::Case> c = service_.Acknowledge({.case_id = request.case_id(),
                                                     .decision = request.decision(),
                                                     .actor = *std::move(actor),
                                                     .comment = request.comment()});
  if (!c.ok()) return Finish(context, Audited(kMethod, c.status(), caller->principal()));
  spdlog::info("case {} {} by {}", c->id(), c->history().rbegin()->event(), absl::CHexEscape(who));
  v1::AcknowledgeResponse answer;
  *answer.mutable_case_() = *std::move(c);
  return Answer<v1::AcknowledgeResponse>(context, answer, response);
}

grpc::ServerUnaryReactor* GrpcService::GetCase(grpc::CallbackServerContext* context,
                                               const grpc::ByteBuffer* request_bytes,
                                               grpc::ByteBuffer* response) {
  v1::GetCaseRequest request;
  if (absl::Status s = Parse(request_bytes, &request); !s.ok()) return Finish(context, s);
  absl::StatusOr<Caller> caller = Authenticate(context, "GetCase");
  if (!caller.ok()) return Finish(context, caller.status());
  absl::StatusOr<v1::Case> c = service_.GetCase(request, identity_.Sees(*caller));
  if (!c.ok()) return Finish(context, c.status());
  v1::GetCaseResponse answer;
  *answer.mutable_case_() = *std::move(c);
  return Answer<v1::GetCaseResponse>(context, answer, response);
}

grpc::ServerUnaryReactor* GrpcService::ListCases(grpc::CallbackServerContext* context,
                                                 const grpc::ByteBuffer* request_bytes,
                                                 grpc::ByteBuffer* response) {
  v1::ListCasesRequest request;
  if (absl::Status s = Parse(request_bytes, &request); !s.ok()) return Finish(context, s);
  absl::StatusOr<Caller> caller = Authenticate(context, "ListCases");
  if (!caller.ok()) return Finish(context, caller.status());
  return Answer(context, service_.ListCases(request, identity_.Sees(*caller)), response);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* GrpcService::WatchCases(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes) {
  v1::WatchCasesRequest request;
  absl::Status s = Parse(request_bytes, &request);
  if (s.ok()) s = cases::CaseStore::CheckWatchFilter(request);
  absl::StatusOr<Caller> caller = absl::UnknownError("");
  if (s.ok()) {
    caller = Authenticate(context, "WatchCases");
    s = caller.status();
  }
  absl::StatusOr<WatcherQuota::Slot> slot = absl::UnknownError("");
  if (s.ok()) {
    // Development mode has one unverified principal for every caller: the global bound only.
    slot = watchers_.Acquire(caller->development() ? "" : caller->principal().subject());
    s = slot.status();
    if (!s.ok()) {
      const uint64_t refused =
          service_.counters().watchers_refused.fetch_add(1, std::memory_order_relaxed) + 1;
      if (LogDue(next_watcher_log_ns_)) {
        spdlog::warn("{}; {} WatchCases streams refused since the start", std::string(s.message()),
                     refused);
      }
    }
  }
  if (!s.ok()) {
    auto* reactor = new FinishedWriteReactor();
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  return NewWatchReactor(service_.cases(), request, identity_.Sees(*caller), *std::move(slot));
}

grpc::ServerUnaryReactor* GrpcService::GetStats(grpc::CallbackServerContext* context,
                                                const grpc::ByteBuffer* request_bytes,
                                                grpc::ByteBuffer* response) {
  v1::GetStatsRequest request;
  if (absl::Status s = Parse(request_bytes, &request); !s.ok()) return Finish(context, s);
  absl::StatusOr<Caller> caller = Authenticate(context, "GetStats");
  if (!caller.ok()) return Finish(context, caller.status());
  return Answer<v1::GetStatsResponse>(context, service_.Stats(identity_.Sees(*caller)), response);
}

grpc::ServerUnaryReactor* GrpcService::SetKillSwitch(grpc::CallbackServerContext* context,
                                                     const grpc::ByteBuffer* request_bytes,
                                                     grpc::ByteBuffer* response) {
  constexpr absl::string_view kMethod = "SetKillSwitch";
  v1::SetKillSwitchRequest request;
  if (absl::Status s = Parse(request_bytes, &request); !s.ok()) return Finish(context, s);
  absl::StatusOr<Caller> caller = Authenticate(context, kMethod);
  if (!caller.ok()) return Finish(context, caller.status());
  if (absl::Status s = identity_.MayAdminister(*caller); !s.ok()) {
    return Finish(context, Audited(kMethod, s, caller->principal()));
  }
  absl::StatusOr<v1::KillSwitch> k = service_.SetKillSwitch(request, caller->principal());
  if (k.ok()) {
    spdlog::warn("kill switch {} on {} {} {} by {}: {}", k->engaged() ? "engaged" : "lifted",
                 v1::KillScope_Name(k->scope()), absl::CHexEscape(k->tenant_id()),
                 absl::CHexEscape(k->value()), absl::CHexEscape(k->set_by().subject()),
                 absl::CHexEscape(k->reason()));
  }
  return Answer(context, k, response);
}

grpc::ServerUnaryReactor* GrpcService::ListKillSwitches(grpc::CallbackServerContext* context,
                                                        const grpc::ByteBuffer* request_bytes,
                                                        grpc::ByteBuffer* response) {
  v1::ListKillSwitchesRequest request;
  if (absl::Status s = Parse(request_bytes, &request); !s.ok()) return Finish(context, s);
  absl::StatusOr<Caller> caller = Authenticate(context, "ListKillSwitches");
  if (!caller.ok()) return Finish(context, caller.status());
  return Answer<v1::ListKillSwitchesResponse>(
      context, service_.KillSwitches(identity_.Sees(*caller)), response);
}

}  // namespace agate::server
