#include "engine/yaml_source.h"

#include <algorithm>
#include <cstdint>

namespace agate::engine {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }
bool IsSpaceOrBreak(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int Utf8Length(uint32_t code_point) {
  if (code_point < 0x80) return 1;
  if (code_point < 0x800) return 2;
  if (code_point < 0x10000) return 3;
  return 4;
}

// Re-reads one scalar from the raw text, recording for each byte of the parsed value the raw
// offset it came from, and checking as it goes that the re-read matches the parsed value.
class ScalarMapper {
 public:
  ScalarMapper(absl::string_view text, absl::string_view value) : text_(text), value_(value) {
    offsets_.reserve(value.size());
  }

  // Map dispatches on the scalar's first character (after node properties at p).
  bool Map(size_t p) {
    p = SkipProperties(p);
    if (p >= text_.size()) return false;
    switch (text_[p]) {
      case '"':
        return DoubleQuoted(p + 1);
      case '\'':
        return SingleQuoted(p + 1);
      case '|':
      case '>':
        return Block(p);
      default:
        return Flow(p, /*quote=*/0);
    }
  }

  bool Complete() const { return offsets_.size() == value_.size(); }
  std::vector<size_t> Take() && { return std::move(offsets_); }

 private:
  bool Done() const { return offsets_.size() >= value_.size(); }

  // Emit records that the next value byte, which must be c, comes from raw offset `at`.
  bool Emit(size_t at, char c) {
    if (Done() || value_[offsets_.size()] != c) return false;
    offsets_.push_back(at);
    return true;
  }
  // EmitAny records the next value byte without checking it (bytes an escape produces).
  bool EmitAny(size_t at) {
    if (Done()) return false;
    offsets_.push_back(at);
    return true;
  }

  bool IsBreakAt(size_t p) const {
    return p < text_.size() &&
           (text_[p] == '\n' || (text_[p] == '\r' && p + 1 < text_.size() && text_[p + 1] == '\n'));
  }
  size_t BreakLength(size_t p) const { return text_[p] == '\r' ? 2 : 1; }

  // SkipProperties skips an anchor (&a) or tag (!t, !!str), the separation after it, and
  // comments on the way, up to the scalar's first character.
  size_t SkipProperties(size_t p) const {
    while (p < text_.size() && (text_[p] == '&' || text_[p] == '!')) {
      while (p < text_.size() && !IsSpaceOrBreak(text_[p])) ++p;
      while (p < text_.size()) {
        if (IsSpaceOrBreak(text_[p])) {
          ++p;
        } else if (text_[p] == '#') {
          while (p < text_.size() && text_[p] != '\n') ++p;
        } else {
          break;
        }
      }
    }
    return p;
  }

  // Fold handles line breaks inside a plain or quoted scalar at p: one break becomes a space,
  // n breaks become n-1 newlines; leading white space of the following lines is dropped.
  bool Fold(size_t& p) {
    const size_t first = p;
    int breaks = 0;
    while (IsBreakAt(p)) {
      ++breaks;
      p += BreakLength(p);
      while (p < text_.size() && IsBlank(text_[p])) ++p;
    }
    if (breaks == 1) return Emit(first, ' ');
    for (int i = 1; i < breaks; ++i) {
      if (!Emit(first, '\n')) return false;
    }
    return true;
  }

  // White handles a run of blanks at p: kept inside a line, dropped before a line break.
  bool White(size_t& p) {
    size_t end = p;
    while (end < text_.size() && IsBlank(text_[end])) ++end;
    if (IsBreakAt(end)) {
      p = end;
      return true;
    }
    for (; p < end && !Done(); ++p) {
      if (!Emit(p, text_[p])) return false;
    }
    p = end;
    return true;
  }

  // Flow maps a plain scalar (quote == 0) or the body of a quoted one, up to the value's length.
  bool Flow(size_t p, char quote) {
    while (!Done() && p < text_.size()) {
      const char c = text_[p];
      if (IsBlank(c)) {
        if (!White(p)) return false;
      } else if (IsBreakAt(p)) {
        if (!Fold(p)) return false;
      } else if (quote == '\'' && c == '\'') {
        if (p + 1 >= text_.size() || text_[p + 1] != '\'') return false;  // closed too early
        if (!Emit(p, '\'')) return false;
        p += 2;
      } else if (quote == '"' && c == '"') {
        return false;  // closed too early
      } else if (quote == '"' && c == '\\') {
        if (!Escape(p)) return false;
      } else {
        if (!Emit(p, c)) return false;
        ++p;
      }
    }
    return Complete();
  }

  bool SingleQuoted(size_t p) { return Flow(p, '\''); }
  bool DoubleQuoted(size_t p) { return Flow(p, '"'); }

  // Escape maps a double-quoted escape sequence at p: every byte it produces maps to the
  // backslash. An escaped line break produces nothing and drops the next line's indentation.
  bool Escape(size_t& p) {
    const size_t at = p;
    if (p + 1 >= text_.size()) return false;
    if (IsBreakAt(p + 1)) {
      p += 1 + BreakLength(p + 1);
      while (p < text_.size() && IsBlank(text_[p])) ++p;
      return true;
    }
    int hex_digits = 0;
    int produced = 1;
    switch (text_[p + 1]) {
      case 'x':
        hex_digits = 2;
        break;
      case 'u':
        hex_digits = 4;
        break;
      case 'U':
        hex_digits = 8;
        break;
      case 'N':
      case '_':
        produced = 2;  // U+0085, U+00A0
        break;
      case 'L':
      case 'P':
        produced = 3;  // U+2028, U+2029
        break;
      case '0':
      case 'a':
      case 'b':
      case 't':
      case '\t':
      case 'n':
      case 'v':
      case 'f':
      case 'r':
      case 'e':
      case ' ':
      case '"':
      case '/':
      case '\\':
        break;
      default:
        return false;
    }
    p += 2;
    if (hex_digits > 0) {
      uint32_t code_point = 0;
      for (int i = 0; i < hex_digits; ++i, ++p) {
        const int digit = p < text_.size() ? HexValue(text_[p]) : -1;
        if (digit < 0) return false;
        code_point = code_point * 16 + static_cast<uint32_t>(digit);
      }
      produced = Utf8Length(code_point);
    }
    for (int i = 0; i < produced; ++i) {
      if (!EmitAny(at)) return false;
    }
    return true;
  }

  // A line of a block scalar.
  struct Line {
    size_t start = 0;  // first byte
    size_t end = 0;    // the line break (or the end of the text)
    size_t next = 0;   // first byte of the following line
    size_t indent = 0;
    bool blank = false;  // only blanks
  };

  Line ReadLine(size_t p) const {
    Line line;
    line.start = p;
    size_t e = p;
    while (e < text_.size() && !IsBreakAt(e)) ++e;
    line.end = e;
    line.next = e < text_.size() ? e + BreakLength(e) : e;
    while (p < e && text_[p] == ' ') ++p;
    line.indent = p - line.start;
    while (p < e && IsBlank(text_[p])) ++p;
    line.blank = p == e;
    return line;
  }

  // Block maps a literal (|) or folded (>) block scalar whose indicator is at p.
  bool Block(size_t p) {
    const bool folded = text_[p] == '>';
    ++p;
    while (p < text_.size() &&
           (text_[p] == '+' || text_[p] == '-' || (text_[p] >= '0' && text_[p] <= '9'))) {
      ++p;
    }
    while (p < text_.size() && IsBlank(text_[p])) ++p;
    if (p < text_.size() && text_[p] == '#') {
      while (p < text_.size() && !IsBreakAt(p)) ++p;
    }
    if (!IsBreakAt(p)) return false;
    p += BreakLength(p);

    // Leading empty lines are newlines of the value; the first content line sets the indentation.
    Line line = ReadLine(p);
    while (line.blank && line.next > line.start) {
      if (!Emit(line.end, '\n')) return false;
      line = ReadLine(line.next);
    }
    if (line.blank || line.indent == 0) return false;
    const size_t indent = line.indent;

    while (!Done()) {
      for (size_t i = line.start + indent; i < line.end && !Done(); ++i) {
        if (!Emit(i, text_[i])) return false;
      }
      if (Done()) break;
      // The empty lines after this one, then the next content line, if any.
      std::vector<size_t> empty_breaks;
      Line next = ReadLine(line.next);
      while (next.blank && next.next > next.start) {
        empty_breaks.push_back(next.end);
        next = ReadLine(next.next);
      }
      const bool has_next = !next.blank && next.indent >= indent;
      if (!has_next) {
        // End of the scalar: what remains of the value is the kept trailing line breaks.
        if (!Emit(line.end, '\n')) return false;
        for (size_t at : empty_breaks) {
          if (Done()) break;
          if (!Emit(at, '\n')) return false;
        }
        break;
      }
      const bool more_indented = IsBlank(text_[line.start + indent]);
      const bool next_more_indented = IsBlank(text_[next.start + indent]);
      if (folded && !more_indented && !next_more_indented) {
        if (empty_breaks.empty()) {
          if (!Emit(line.end, ' ')) return false;
        }
      } else {
        if (!Emit(line.end, '\n')) return false;
      }
      for (size_t at : empty_breaks) {
        if (Done()) break;
        if (!Emit(at, '\n')) return false;
      }
      line = next;
    }
    return Complete();
  }

  absl::string_view text_;
  absl::string_view value_;
  std::vector<size_t> offsets_;
};

// Estimates nesting depth line by line; see FindDeepNesting.
class NestingScanner {
 public:
  NestingScanner(absl::string_view text, int max_depth) : text_(text), max_depth_(max_depth) {}

  std::optional<SourceLocation> Scan() {
    size_t p = 0;
    size_t bom = 0;
    if (text_.substr(0, 3) == "\xEF\xBB\xBF") p = bom = 3;
    int line_number = 1;
    while (p <= text_.size()) {
      size_t eol = text_.find('\n', p);
      if (eol == absl::string_view::npos) eol = text_.size();
      absl::string_view line = text_.substr(p, eol - p);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (std::optional<size_t> column = ScanLine(line)) {
        const size_t shift = line_number == 1 ? bom : 0;
        return SourceLocation{line_number, static_cast<int>(*column - shift + 1)};
      }
      if (eol >= text_.size()) break;
      p = eol + 1;
      ++line_number;
    }
    return std::nullopt;
  }

 private:
  int Depth() const { return static_cast<int>(block_.size()) + flow_; }

  // ScanLine returns the column (0-based, from the line's start) where the depth limit is
  // exceeded, if it is.
  std::optional<size_t> ScanLine(absl::string_view line) {
    size_t indent = 0;
    while (indent < line.size() && line[indent] == ' ') ++indent;
    const bool empty = indent == line.size() || IsBlank(line[indent]) || line[indent] == '#';
    if (block_scalar_parent_ >= -1) {
      if (empty || static_cast<long>(indent) > block_scalar_parent_) return std::nullopt;
      block_scalar_parent_ = -2;
    }
    size_t i = 0;
    if (quote_ == 0 && flow_ == 0) {
      if (empty) return std::nullopt;
      if (line[0] == '%') return std::nullopt;  // directive
      if ((line.substr(0, 3) == "---" || line.substr(0, 3) == "...") &&
          (line.size() == 3 || IsBlank(line[3]))) {
        block_.clear();
        if (line[0] == '.') return std::nullopt;
        i = 3;
      } else {
        while (!block_.empty() && block_.back() > indent) block_.pop_back();
        if (block_.empty() || block_.back() < indent) block_.push_back(indent);
        if (Depth() > max_depth_) return indent;
        i = indent;
      }
      node_start_ = true;
      owner_column_ = static_cast<long>(indent);
    }
    while (i < line.size()) {
      const char c = line[i];
      if (quote_ != 0) {
        if (quote_ == '"' && c == '\\') {
          i += 2;
        } else if (c == quote_) {
          if (quote_ == '\'' && i + 1 < line.size() && line[i + 1] == '\'') {
            i += 2;
          } else {
            quote_ = 0;
            node_start_ = false;
            ++i;
          }
        } else {
          ++i;
        }
        continue;
      }
      if (IsBlank(c)) {
        ++i;
        continue;
      }
      if (c == '#' && (i == 0 || IsBlank(line[i - 1]))) break;  // comment
      const bool next_is_blank = i + 1 == line.size() || IsBlank(line[i + 1]);
      if (node_start_) {
        if (c == '"' || c == '\'') {
          quote_ = c;
          ++i;
          continue;
        }
        if (c == '[' || c == '{') {
          ++flow_;
          if (Depth() > max_depth_) return i;
          ++i;
          continue;
        }
        if (flow_ == 0 && (c == '-' || c == '?' || c == ':') && next_is_blank) {
          // A block entry or complex key: a nested node may start after it on this line.
          size_t j = i + 1;
          while (j < line.size() && IsBlank(line[j])) ++j;
          if (c != ':') owner_column_ = static_cast<long>(i);
          if (c != ':' && j < line.size() && line[j] != '#') {
            block_.push_back(j);
            if (Depth() > max_depth_) return j;
          }
          i = j;
          continue;
        }
        if (flow_ == 0 && (c == '|' || c == '>')) {
          block_scalar_parent_ = owner_column_;
          break;  // the header's rest is indicators and a comment
        }
        if (c == '&' || c == '!' || c == '*') {
          while (i < line.size() && !IsBlank(line[i]) &&
                 !(flow_ > 0 && (line[i] == ',' || line[i] == ']' || line[i] == '}'))) {
            ++i;
          }
          if (c == '*') node_start_ = false;
          continue;
        }
        if (flow_ > 0 && (c == ']' || c == '}' || c == ',')) {
          // handled below (an empty node)
        } else {
          // A plain scalar starts (possibly a key).
          if (flow_ == 0) owner_column_ = static_cast<long>(i);
          node_start_ = false;
          ++i;
          continue;
        }
      }
      if (flow_ > 0) {
        if (c == '[' || c == '{') {
          ++flow_;
          node_start_ = true;
          if (Depth() > max_depth_) return i;
        } else if (c == ',') {
          node_start_ = true;
        } else if (c == ']' || c == '}') {
          --flow_;
          node_start_ = false;
        } else if (c == ':' && (next_is_blank || line[i + 1] == ',' || line[i + 1] == ']' ||
                                line[i + 1] == '}')) {
          node_start_ = true;
        }
      } else if (c == ':' && next_is_blank) {
        node_start_ = true;
      }
      ++i;
    }
    return std::nullopt;
  }

  absl::string_view text_;
  int max_depth_;
  std::vector<size_t> block_;      // columns of the open block collections
  int flow_ = 0;                   // open [ and {
  char quote_ = 0;                 // inside a quoted scalar that may span lines
  bool node_start_ = true;         // the next non-blank character starts a node
  long owner_column_ = -1;         // column of the key or entry owning the next node
  long block_scalar_parent_ = -2;  // >= -1 while skipping a block scalar's lines
};

}  // namespace

YamlSource::YamlSource(absl::string_view text) : text_(text) {
  if (text_.substr(0, 3) == "\xEF\xBB\xBF") bom_ = 3;
  line_starts_.push_back(0);
  for (size_t i = 0; i < text_.size(); ++i) {
    if (text_[i] == '\n') line_starts_.push_back(i + 1);
  }
}

SourceLocation YamlSource::LocationOf(size_t offset) const {
  offset = std::min(offset, text_.size());
  const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
  const size_t line = static_cast<size_t>(it - line_starts_.begin()) - 1;
  size_t column = offset - line_starts_[line];
  if (line == 0) column = column >= bom_ ? column - bom_ : 0;
  return SourceLocation{static_cast<int>(line + 1), static_cast<int>(column + 1)};
}

std::optional<size_t> YamlSource::OffsetOfMark(int line, int column) const {
  if (line < 0 || column < 0 || static_cast<size_t>(line) >= line_starts_.size()) {
    return std::nullopt;
  }
  const size_t offset =
      line_starts_[line] + static_cast<size_t>(column) + (line == 0 ? bom_ : size_t{0});
  if (offset > text_.size()) return std::nullopt;
  return offset;
}

std::vector<size_t> YamlSource::MapScalar(size_t mark_offset, absl::string_view value) const {
  if (value.empty() || mark_offset >= text_.size()) return {};
  ScalarMapper mapper(text_, value);
  if (!mapper.Map(mark_offset) || !mapper.Complete()) return {};
  return std::move(mapper).Take();
}

std::optional<SourceLocation> FindDeepNesting(absl::string_view text, int max_depth) {
  return NestingScanner(text, max_depth).Scan();
}

}  // namespace agate::engine
