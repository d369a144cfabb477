#include "server/grpc_service.h"

#include <array>
#include <chrono>
#include <new>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
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
  static InFlightReactor* New(grpc::CallbackServerContext* context, Api* api) {
    void* memory = grpc_call_arena_alloc(context->c_call(), sizeof(InFlightReactor));
    return new (memory) InFlightReactor(api);
  }
  void OnDone() override {
    api_->LeaveEvaluate();
    this->~InFlightReactor();  // the arena's memory goes with the call
  }
  void OnCancel() override {}
  // ServerReactor::InternalInlineable is marked "not API, for reactors with trivial reactions":
  // these are (an atomic decrement), and gRPC 1.51 is the version Debian 12 pins.
  bool InternalInlineable() override { return true; }

 private:
  explicit InFlightReactor(Api* api) : api_(api) {}
  Api* const api_;
};

// FinishedWriteReactor ends a stream at once (a request that did not parse, or was refused).
class FinishedWriteReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerUnaryReactor* GrpcService::Evaluate(grpc::CallbackServerContext* context,
                                                const grpc::ByteBuffer* request_bytes,
                                                grpc::ByteBuffer* response_bytes) {
  grpc::ServerUnaryReactor* reactor = InFlightReactor::New(context, &api_);
  absl::Status status = api_.EnterEvaluate(context->deadline());
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
  if (scanned && api_.identity().MayEvaluate(*caller, wire.tenant_id, wire.agent_id).ok() &&
      api_.service().Replay(wire, &replayed)) {
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
    status = api_.Evaluate(*caller, request, &response, &serialized, scanned ? &wire : nullptr);
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
  // Shadow mode and the capture see the request once its answer is handed to gRPC, still in this
  // handler's arena (docs/perf.md, "Shadow mode").
  if (status.ok()) api_.service().AfterAnswer(request, response);
  return reactor;
}

absl::StatusOr<Caller> GrpcService::Authenticate(grpc::CallbackServerContext* context,
                                                 absl::string_view method) {
  absl::StatusOr<Caller> caller = api_.identity().Authenticate(*context);
  if (caller.ok()) return caller;  // peer() allocates: only a refusal needs it
  return api_.Authenticated(method, std::move(caller), context->peer());
}

grpc::ServerUnaryReactor* GrpcService::Acknowledge(grpc::CallbackServerContext* context,
                                                   const grpc::ByteBuffer* request_bytes,
                                                   grpc::ByteBuffer* response) {
  v1::AcknowledgeRequest request;
  if (absl::Status s = Parse(request_bytes, &request); !s.ok()) return Finish(context, s);
  absl::StatusOr<Caller> caller = Authenticate(context, "Acknowledge");
  if (!caller.ok()) return Finish(context, caller.status());
  const auto& metadata = context->client_metadata();
  auto claimed = metadata.find(kApproverMetadata);
  return Answer(
      context,
      api_.Acknowledge(*caller,
                       claimed == metadata.end()
                           ? absl::string_view()
                           : absl::string_view(claimed->second.data(), claimed->second.size()),
                       request),
      response);
}

grpc::ServerUnaryReactor* GrpcService::GetCase(grpc::CallbackServerContext* context,
                                               const grpc::ByteBuffer* request_bytes,
                                               grpc::ByteBuffer* response) {
  v1::GetCaseRequest request;
  if (absl::Status s = Parse(request_bytes, &request); !s.ok()) return Finish(context, s);
  absl::StatusOr<Caller> caller = Authenticate(context, "GetCase");
  if (!caller.ok()) return Finish(context, caller.status());
  return Answer(context, api_.GetCase(*caller, request), response);
}

grpc::ServerUnaryReactor* GrpcService::ListCases(grpc::CallbackServerContext* context,
                                                 const grpc::ByteBuffer* request_bytes,
                                                 grpc::ByteBuffer* response) {
  v1::ListCasesRequest request;
  if (absl::Status s = Parse(request_bytes, &request); !s.ok()) return Finish(context, s);
  absl::StatusOr<Caller> caller = Authenticate(context, "ListCases");
  if (!caller.ok()) return Finish(context, caller.status());
  return Answer(context, api_.ListCases(*caller, request), response);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* GrpcService::WatchCases(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes) {
  v1::WatchCasesRequest request;
  absl::Status s = Parse(request_bytes, &request);
  if (s.ok()) s = cases::CaseStore::CheckWatchFilter(request);  // before authenticating
  absl::StatusOr<Caller> caller = absl::UnknownError("");
  if (s.ok()) {
    caller = Authenticate(context, "WatchCases");
    s = caller.status();
  }
  absl::StatusOr<WatcherQuota::Slot> slot = absl::UnknownError("");
  if (s.ok()) {
    slot = api_.OpenWatch(*caller, request);
    s = slot.status();
  }
  if (!s.ok()) {
    auto* reactor = new FinishedWriteReactor();
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  return NewWatchReactor(api_.service().cases(), request, api_.identity().Sees(*caller),
                         *std::move(slot));
}

grpc::ServerUnaryReactor* GrpcService::GetStats(grpc::CallbackServerContext* context,
                                                const grpc::ByteBuffer* request_bytes,
                                                grpc::ByteBuffer* response) {
  v1::GetStatsRequest request;
  if (absl::Status s = Parse(request_bytes, &request); !s.ok()) return Finish(context, s);
  absl::StatusOr<Caller> caller = Authenticate(context, "GetStats");
  if (!caller.ok()) return Finish(context, caller.status());
  return Answer<v1::GetStatsResponse>(context, api_.GetStats(*caller), response);
}

grpc::ServerUnaryReactor* GrpcService::SetKillSwitch(grpc::CallbackServerContext* context,
                                                     const grpc::ByteBuffer* request_bytes,
                                                     grpc::ByteBuffer* response) {
  v1::SetKillSwitchRequest request;
  if (absl::Status s = Parse(request_bytes, &request); !s.ok()) return Finish(context, s);
  absl::StatusOr<Caller> caller = Authenticate(context, "SetKillSwitch");
  if (!caller.ok()) return Finish(context, caller.status());
  return Answer(context, api_.SetKillSwitch(*caller, request), response);
}

grpc::ServerUnaryReactor* GrpcService::ListKillSwitches(grpc::CallbackServerContext* context,
                                                        const grpc::ByteBuffer* request_bytes,
                                                        grpc::ByteBuffer* response) {
  v1::ListKillSwitchesRequest request;
  if (absl::Status s = Parse(request_bytes, &request); !s.ok()) return Finish(context, s);
  absl::StatusOr<Caller> caller = Authenticate(context, "ListKillSwitches");
  if (!caller.ok()) return Finish(context, caller.status());
  return Answer<v1::ListKillSwitchesResponse>(context, api_.ListKillSwitches(*caller), response);
}

grpc::ServerUnaryReactor* GrpcService::GetShadowReport(grpc::CallbackServerContext* context,
                                                       const grpc::ByteBuffer* request_bytes,
                                                       grpc::ByteBuffer* response) {
  v1::GetShadowReportRequest request;
  if (absl::Status s = Parse(request_bytes, &request); !s.ok()) return Finish(context, s);
  absl::StatusOr<Caller> caller = Authenticate(context, "GetShadowReport");
  if (!caller.ok()) return Finish(context, caller.status());
  return Answer(context, api_.GetShadowReport(*caller), response);
}

}  // namespace agate::server
