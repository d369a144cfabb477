// Sample requests for the fuzz targets: valid agate.v1.EvaluateRequests that between them set
// every field of the request schema (strings, lists, maps, attributes of every JSON kind) and
// touch every lane of the bundled matrix.
//
// fuzz_cel evaluates each compiled expression against them; make_request_corpus writes them as
// fuzz_evaluate_request's seeds. Every one passes engine::ValidateRequest.
#ifndef AGATE_TESTS_FUZZ_SAMPLE_REQUESTS_H_
#define AGATE_TESTS_FUZZ_SAMPLE_REQUESTS_H_

#include <string>
#include <utility>
#include <vector>

#include "engine/request.h"

namespace agate::fuzz {

// SampleRequests returns (name, request) pairs; the names are file names for the seed corpus.
// Aborts if a built-in text-format request does not parse or does not validate.
std::vector<std::pair<std::string, engine::Request>> SampleRequests();

}  // namespace agate::fuzz

#endif  // AGATE_TESTS_FUZZ_SAMPLE_REQUESTS_H_
