// fuzz_evaluate_request: the input is a serialized agate.v1.EvaluateRequest, as it arrives on the
// wire. Inputs that do not parse are skipped (gRPC rejects them before agate sees them); every
// other one goes through the server's request path, Service::Evaluate (validation, signals,
// evaluation, encoding, cases), on the bundled matrix deploy/examples/escalation-matrix.yaml.
//
// Each input gets a fresh Service, so a crash reproduces from its one file. The request is
// evaluated twice: the second time it joins the case the first one opened (or redeems nothing).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "agate/v1/agate.pb.h"
#include "common/clock.h"
#include "engine/matrix.h"
#include "google/protobuf/stubs/logging.h"
#include "service/service.h"

#ifndef AGATE_SOURCE_DIR
#error "AGATE_SOURCE_DIR must name the repository root"
#endif

namespace {

std::shared_ptr<const agate::engine::Matrix> BundledMatrix() {
  const std::string path = AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml";
  auto matrix = agate::engine::LoadMatrixFile(path, nullptr);
  if (!matrix.ok()) {
    std::fprintf(stderr, "cannot load %s: %s\n", path.c_str(), matrix.status().ToString().c_str());
    std::abort();
  }
  return *std::move(matrix);
}

}  // namespace

// Most inputs are not valid protobuf (invalid UTF-8 in a string field, say): protobuf would log
// each one, which slows fuzzing tenfold and buries the report.
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto* const kMatrix =
      new std::shared_ptr<const agate::engine::Matrix>(BundledMatrix());
  agate::v1::EvaluateRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return -1;  // not a corpus input

  agate::FakeClock clock;
  // A small idempotency cache: the default one reserves 44 MB of huge pages for every input.
  agate::service::ServiceOptions options;
  options.idempotency.max_entries = 1000;
  std::unique_ptr<agate::service::Service> service =
      *agate::service::Service::Create(*kMatrix, clock, options);
  for (int i = 0; i < 2; ++i) {
    agate::v1::EvaluateResponse response;
    const absl::Status status = service->Evaluate(request, &response);
    if (!status.ok()) return 0;
    (void)response.ByteSizeLong();
    clock.Advance(absl::Seconds(1));
  }
  return 0;
}
