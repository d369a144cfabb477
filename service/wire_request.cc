#include "service/wire_request.h"

#include <cstdint>

#include "common/sha256.h"

namespace agate::service {
namespace {

// ReadVarint reads a base-128 varint of at most 10 bytes at *p (< end) and advances *p.
bool ReadVarint(const unsigned char** p, const unsigned char* end, uint64_t* value) {
  uint64_t v = 0;
  for (int shift = 0; shift < 70 && *p < end; shift += 7) {
    const unsigned char byte = *(*p)++;
    v |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *value = v;
      return true;
    }
  }
  return false;
}

}  // namespace

bool WireRequest::Scan(absl::string_view bytes, WireRequest* out) {
  *out = WireRequest{};
  out->bytes = bytes;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const unsigned char* const end = p + bytes.size();
  while (p < end) {
    uint64_t tag = 0;
    if (!ReadVarint(&p, end, &tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff) return false;
    uint64_t n = 0;
    switch (tag & 7) {
      case 0:  // varint
        if (!ReadVarint(&p, end, &n)) return false;
        break;
      case 1:  // fixed64
        if (end - p < 8) return false;
        p += 8;
        break;
      case 5:  // fixed32
        if (end - p < 4) return false;
        p += 4;
        break;
      case 2: {  // length-delimited
        if (!ReadVarint(&p, end, &n) || n > static_cast<uint64_t>(end - p)) return false;
        const absl::string_view value(reinterpret_cast<const char*>(p), n);
        p += n;
        switch (tag >> 3) {
          case 1:
            out->request_id = value;
            break;
          case 2:
            out->tenant_id = value;
            break;
          case 3:
            out->agent_id = value;
            break;
          default:
            break;
        }
        break;
      }
      default:  // groups (3, 4) and the reserved 6, 7: the parser decides
        return false;
    }
  }
  out->digest = ThreadSha256().Digest(bytes);
  return true;
}

}  // namespace agate::service
