// make_request_corpus DIR: writes each sample request (sample_requests.h), serialized, to
// DIR/<name>.pb: the seed corpus of fuzz_evaluate_request.
//   build-fuzz/tests/fuzz/make_request_corpus tests/fuzz/corpus/fuzz_evaluate_request
#include <cstdio>
#include <fstream>
#include <string>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "tests/fuzz/sample_requests.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_request_corpus DIR\n");
    return 2;
  }
  for (const auto& [name, request] : agate::fuzz::SampleRequests()) {
    // Deterministic: map entries in key order, so regenerating changes no file.
    std::string bytes;
    {
      google::protobuf::io::StringOutputStream stream(&bytes);
      google::protobuf::io::CodedOutputStream coded(&stream);
      coded.SetSerializationDeterministic(true);
      request.SerializeToCodedStream(&coded);
    }
    const std::string path = std::string(argv[1]) + "/" + name + ".pb";
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()))) {
      std::fprintf(stderr, "make_request_corpus: cannot write %s\n", path.c_str());
      return 1;
    }
  }
  return 0;
}
