// Positions in the raw text of a YAML document, for diagnostics that point inside scalars, and a
// cheap pre-parse guard against documents nested too deeply for a recursive parser.
//
// yaml-cpp gives each node a mark (0-based line and column of its first token) but keeps no trace
// of how a scalar was written: quotes, escapes, line folding and block indentation are gone from
// Node::Scalar(). YamlSource re-reads the scalar's raw text from the mark to map every byte of the
// parsed value back to a byte of the file, so an error at offset 17 of a trigger's condition can be
// reported at the right line and column. When a layout is not understood (the re-read does not
// reproduce the parsed value), the mapping fails and callers fall back to the scalar's mark.
//
// YamlSource holds a view of the text: the text must outlive it. Thread-compatible; immutable
// after construction. Nothing here throws or crashes on arbitrary bytes.
//
// Example:
//   YamlSource source(text);
//   std::optional<size_t> start = source.OffsetOfMark(node.Mark().line, node.Mark().column);
//   std::vector<size_t> bytes = source.MapScalar(*start, node.Scalar());
//   if (!bytes.empty()) location = source.LocationOf(bytes[issue.offset]);
#ifndef AGATE_ENGINE_YAML_SOURCE_H_
#define AGATE_ENGINE_YAML_SOURCE_H_

#include <cstddef>
#include <optional>
#include <vector>

#include "absl/strings/string_view.h"
#include "engine/diagnostic.h"

namespace agate::engine {

class YamlSource {
 public:
  explicit YamlSource(absl::string_view text);

  absl::string_view text() const { return text_; }

  // LocationOf returns the 1-based line and byte column of byte offset `offset` (clamped to the
  // text's size).
  SourceLocation LocationOf(size_t offset) const;

  // OffsetOfMark returns the byte offset of a yaml-cpp mark (0-based line and column, counted
  // after a UTF-8 byte order mark), or nullopt if the mark lies outside the text.
  std::optional<size_t> OffsetOfMark(int line, int column) const;

  // MapScalar returns, for each byte of `value` (a scalar as yaml-cpp parsed it), the byte offset
  // in the text it was read from, for a scalar node whose mark is at byte offset `mark_offset`.
  // Handles node properties (anchor, tag) before the scalar, plain, single-quoted (`''` is one
  // quote) and double-quoted (escapes map to their backslash) scalars, and literal (`|`) and folded
  // (`>`) block scalars, each possibly over several lines. Returns an empty vector when the layout
  // is not understood or `value` is empty.
  std::vector<size_t> MapScalar(size_t mark_offset, absl::string_view value) const;

 private:
  absl::string_view text_;
  size_t bom_ = 0;                   // 3 when the text starts with a UTF-8 byte order mark
  std::vector<size_t> line_starts_;  // byte offset of each line's first byte
};

// FindDeepNesting returns the position where the document first nests collections deeper than
// max_depth (block indentation, `- ` entries, `[` and `{`), or nullopt. It is an over-estimate
// meant to run before a recursive parser: linear time, no recursion, never rejects the shallow
// documents a matrix file is.
std::optional<SourceLocation> FindDeepNesting(absl::string_view text, int max_depth);

}  // namespace agate::engine

#endif  // AGATE_ENGINE_YAML_SOURCE_H_
