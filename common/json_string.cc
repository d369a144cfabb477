#include "common/json_string.h"

#include <cstdint>
#include <cstring>

namespace agate {
namespace {

// Utf8SequenceLength returns the length (2..4) of the well-formed UTF-8 sequence starting at
// s[i] (a byte >= 0x80), or 0 if there is none (RFC 3629, table 3-7 of the Unicode standard).
size_t Utf8SequenceLength(absl::string_view s, size_t i) {
  const auto byte = [&](size_t k) -> uint8_t {
    return i + k < s.size() ? static_cast<uint8_t>(s[i + k]) : 0;
  };
  const auto in = [](uint8_t b, uint8_t lo, uint8_t hi) { return b >= lo && b <= hi; };
  const uint8_t b0 = byte(0);
  if (in(b0, 0xC2, 0xDF)) return in(byte(1), 0x80, 0xBF) ? 2 : 0;
  if (in(b0, 0xE0, 0xEF)) {
    // E0: no overlongs (A0..BF); ED: no surrogates (80..9F).
    const uint8_t lo = b0 == 0xE0 ? 0xA0 : 0x80;
    const uint8_t hi = b0 == 0xED ? 0x9F : 0xBF;
    return in(byte(1), lo, hi) && in(byte(2), 0x80, 0xBF) ? 3 : 0;
  }
  if (in(b0, 0xF0, 0xF4)) {
    // F0: no overlongs (90..BF); F4: nothing above U+10FFFF (80..8F).
    const uint8_t lo = b0 == 0xF0 ? 0x90 : 0x80;
    const uint8_t hi = b0 == 0xF4 ? 0x8F : 0xBF;
    return in(byte(1), lo, hi) && in(byte(2), 0x80, 0xBF) && in(byte(3), 0x80, 0xBF) ? 4 : 0;
  }
  return 0;
}

// Plain8 returns true if none of the 8 bytes at p needs attention: all are ASCII, none is a
// control character, '"' or '\\' (word-at-a-time tests from Sean Anderson's "Bit Twiddling
// Hacks": a borrow can only flag a byte above a byte that really matches, so "any" is exact).
inline bool Plain8(const char* p) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  const uint64_t quote = v ^ (kOnes * '"');
  const uint64_t backslash = v ^ (kOnes * '\\');
  const uint64_t flagged = ((v - kOnes * 0x20) & ~v)             // a byte below 0x20
                           | ((quote - kOnes) & ~quote)          // a '"'
                           | ((backslash - kOnes) & ~backslash)  // a '\\'
                           | v;                                  // a byte >= 0x80
  return (flagged & kHigh) == 0;
}

}  // namespace

void AppendJsonEscaped(absl::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t run = 0;  // start of the bytes not yet copied: they need no escaping
  size_t i = 0;
  while (i < s.size()) {
    if (i + 8 <= s.size() && Plain8(s.data() + i)) {
      i += 8;
      continue;
    }
    const auto c = static_cast<uint8_t>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      if (const size_t n = Utf8SequenceLength(s, i); n != 0) {
        i += n;
        continue;
      }
    }
    out->append(s.data() + run, i - run);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20) {
          const char escaped[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
          out->append(escaped, sizeof(escaped));
        } else {
          out->append("\\ufffd");  // not well-formed UTF-8
        }
    }
    run = ++i;
  }
  out->append(s.data() + run, s.size() - run);
}

void AppendJsonString(absl::string_view s, std::string* out) {
  out->push_back('"');
  AppendJsonEscaped(s, out);
  out->push_back('"');
}

std::string JsonEscape(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  AppendJsonEscaped(s, &out);
  return out;
}

}  // namespace agate
