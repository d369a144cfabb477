// JSON string escaping for agate's hand-written JSON (decision log records, JSON log lines, CLI
// error lines): one function, so every writer agrees on what a valid string is.
//
// The output is always valid JSON and valid UTF-8, whatever the input bytes:
//   - '"' and '\' are escaped; \b \f \n \r \t use their short forms; other control characters
//     (below 0x20) become \u00XX (lowercase hex);
//   - well-formed UTF-8 passes through unchanged (no \u escapes for non-ASCII text);
//   - every byte that is not part of a well-formed UTF-8 sequence (a stray continuation byte, an
//     overlong form, a surrogate, a code point above U+10FFFF, a truncated sequence) becomes
//     \ufffd, the replacement character.
//
// Thread-safe: pure functions.
//
// Example:
//   std::string out = "{\"msg\":";
//   AppendJsonString("tab\there, bad byte \xff", &out);  // "tab\there, bad byte \ufffd"
//   out += "}";
#ifndef AGATE_COMMON_JSON_STRING_H_
#define AGATE_COMMON_JSON_STRING_H_

#include <string>

#include "absl/strings/string_view.h"

namespace agate {

// AppendJsonEscaped appends s escaped as the contents of a JSON string (without the quotes).
void AppendJsonEscaped(absl::string_view s, std::string* out);

// AppendJsonString appends s as a quoted JSON string.
void AppendJsonString(absl::string_view s, std::string* out);

// JsonEscape returns s escaped as the contents of a JSON string (without the quotes).
std::string JsonEscape(absl::string_view s);

}  // namespace agate

#endif  // AGATE_COMMON_JSON_STRING_H_
