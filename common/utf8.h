// IsValidUtf8: whether bytes are well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates,
// nothing past U+10FFFF).
#ifndef AGATE_COMMON_UTF8_H_
#define AGATE_COMMON_UTF8_H_

#include "absl/strings/string_view.h"

namespace agate {

bool IsValidUtf8(absl::string_view bytes);

}  // namespace agate

#endif  // AGATE_COMMON_UTF8_H_
