#include "engine/expr/syntax.h"

#include <cerrno>
#include <cstdlib>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace agate::engine::expr::internal {
namespace {

enum class Tok : uint8_t { kEnd, kIdent, kInt, kUint, kDouble, kString, kPunct, kError };

struct Token {
  Tok kind = Tok::kEnd;
  int offset = 0;
  std::string text;  // identifier, punctuation, or the decoded string literal
  int64_t int_value = 0;
  uint64_t uint_value = 0;
  double double_value = 0;
};

bool IsIdentStart(char c) { return absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdentChar(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_'; }

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

class Lexer {
 public:
  explicit Lexer(absl::string_view text) : text_(text) {}

  // Next returns the next token; a kError token's text is the message.
  Token Next() {
    SkipSpace();
    Token t;
    t.offset = static_cast<int>(pos_);
    if (pos_ >= text_.size()) return t;
    const char c = text_[pos_];
    if ((c == 'r' || c == 'R' || c == 'b' || c == 'B') && pos_ + 1 < text_.size() &&
        (text_[pos_ + 1] == '"' || text_[pos_ + 1] == '\'')) {
      if (c == 'b' || c == 'B') return Error(t, "bytes literals are not supported");
      ++pos_;
      return String(t, /*raw=*/true);
    }
    if (IsIdentStart(c)) {
      const size_t start = pos_;
      while (pos_ < text_.size() && IsIdentChar(text_[pos_])) ++pos_;
      t.kind = Tok::kIdent;
      t.text = std::string(text_.substr(start, pos_ - start));
      return t;
    }
    if (absl::ascii_isdigit(static_cast<unsigned char>(c)) ||
        (c == '.' && pos_ + 1 < text_.size() &&
         absl::ascii_isdigit(static_cast<unsigned char>(text_[pos_ + 1])))) {
      return Number(t);
    }
    if (c == '"' || c == '\'') return String(t, /*raw=*/false);
    static constexpr absl::string_view kTwo[] = {"==", "!=", "<=", ">=", "&&", "||"};
    for (absl::string_view op : kTwo) {
      if (text_.substr(pos_, 2) == op) {
        pos_ += 2;
        t.kind = Tok::kPunct;
        t.text = std::string(op);
        return t;
      }
    }
    static constexpr absl::string_view kOne = "<>+-*/%!?:.,()[]{}";
    if (kOne.find(c) != absl::string_view::npos) {
      ++pos_;
      t.kind = Tok::kPunct;
      t.text = std::string(1, c);
      return t;
    }
    if (c == '=') return Error(t, "unexpected '='; use '==' to compare");
    if (c == '&') return Error(t, "unexpected '&'; use '&&'");
    if (c == '|') return Error(t, "unexpected '|'; use '||'");
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7F) {
      return Error(t, absl::StrCat("unexpected character (byte 0x",
                                   absl::Hex(static_cast<unsigned char>(c)), ")"));
    }
    return Error(t, absl::StrCat("unexpected character '", std::string(1, c), "'"));
  }

 private:
  Token Error(Token t, std::string message) {
    t.kind = Tok::kError;
    t.text = std::move(message);
    pos_ = text_.size();
    return t;
  }

  void SkipSpace() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
        ++pos_;
      } else if (c == '/' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '/') {
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  Token Number(Token t) {
    const size_t start = pos_;
    if (text_.substr(pos_, 2) == "0x" || text_.substr(pos_, 2) == "0X") {
      pos_ += 2;
      const size_t digits = pos_;
      while (pos_ < text_.size() && absl::ascii_isxdigit(static_cast<unsigned char>(text_[pos_]))) {
        ++pos_;
      }
      if (pos_ == digits) return Error(t, "hexadecimal literal without digits");
      return Integer(t, std::string(text_.substr(digits, pos_ - digits)), 16);
    }
    bool is_double = false;
    while (pos_ < text_.size() && absl::ascii_isdigit(static_cast<unsigned char>(text_[pos_]))) {
      ++pos_;
    }
    if (pos_ < text_.size() && text_[pos_] == '.' && pos_ + 1 < text_.size() &&
        absl::ascii_isdigit(static_cast<unsigned char>(text_[pos_ + 1]))) {
      is_double = true;
      ++pos_;
      while (pos_ < text_.size() && absl::ascii_isdigit(static_cast<unsigned char>(text_[pos_]))) {
        ++pos_;
      }
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      size_t p = pos_ + 1;
      if (p < text_.size() && (text_[p] == '+' || text_[p] == '-')) ++p;
      if (p < text_.size() && absl::ascii_isdigit(static_cast<unsigned char>(text_[p]))) {
        is_double = true;
        pos_ = p;
        while (pos_ < text_.size() &&
               absl::ascii_isdigit(static_cast<unsigned char>(text_[pos_]))) {
          ++pos_;
        }
      } else {
        return Error(t, "exponent without digits");
      }
    }
    const std::string digits(text_.substr(start, pos_ - start));
    if (is_double) {
      t.kind = Tok::kDouble;
      t.double_value = std::strtod(digits.c_str(), nullptr);
      return t;
    }
    return Integer(t, digits, 10);
  }

  Token Integer(Token t, const std::string& digits, int base) {
    const bool is_uint = pos_ < text_.size() && (text_[pos_] == 'u' || text_[pos_] == 'U');
    if (is_uint) ++pos_;
    if (pos_ < text_.size() && IsIdentChar(text_[pos_])) {
      return Error(t, "invalid number literal");
    }
    errno = 0;
    const unsigned long long v = std::strtoull(digits.c_str(), nullptr, base);
    if (errno == ERANGE) return Error(t, "integer literal out of range");
    t.uint_value = v;
    if (is_uint) {
      t.kind = Tok::kUint;
    } else {
      // 9223372036854775808 is only valid negated; the parser checks.
      if (v > static_cast<unsigned long long>(std::numeric_limits<int64_t>::max()) + 1) {
        return Error(t, "integer literal out of range");
      }
      t.kind = Tok::kInt;
    }
    return t;
  }

  Token String(Token t, bool raw) {
    const char quote = text_[pos_];
    const bool triple = text_.substr(pos_, 3) == std::string(3, quote);
    pos_ += triple ? 3 : 1;
    std::string out;
    for (;;) {
      if (pos_ >= text_.size()) return Error(t, "unterminated string literal");
      const char c = text_[pos_];
      if (triple) {
        if (text_.substr(pos_, 3) == std::string(3, quote)) {
          pos_ += 3;
          break;
        }
      } else {
        if (c == quote) {
          ++pos_;
          break;
        }
        if (c == '\n' || c == '\r') return Error(t, "unterminated string literal");
      }
      if (c == '\\' && !raw) {
        const int escape_at = static_cast<int>(pos_);
        if (!Escape(out)) {
          Token e;
          e.offset = escape_at;
          return Error(e, "invalid escape sequence");
        }
        continue;
      }
      out.push_back(c);
      ++pos_;
    }
    t.kind = Tok::kString;
    t.text = std::move(out);
    return t;
  }

  // Escape decodes one escape sequence at pos_ (a backslash) into out.
  bool Escape(std::string& out) {
    ++pos_;
    if (pos_ >= text_.size()) return false;
    const char c = text_[pos_++];
    switch (c) {
      case 'a':
        out.push_back('\a');
        return true;
      case 'b':
        out.push_back('\b');
        return true;
      case 'f':
        out.push_back('\f');
        return true;
      case 'n':
        out.push_back('\n');
        return true;
      case 'r':
        out.push_back('\r');
        return true;
      case 't':
        out.push_back('\t');
        return true;
      case 'v':
        out.push_back('\v');
        return true;
      case '\\':
      case '\'':
      case '"':
      case '`':
      case '?':
        out.push_back(c);
        return true;
      // In a CEL string (bytes literals are not supported) \x and octal escapes name Unicode
      // code points: '\xe9' is "é" in UTF-8, not the byte 0xE9.
      case 'x':
      case 'X':
        return Hex(out, 2);
      case 'u':
        return Hex(out, 4);
      case 'U':
        return Hex(out, 8);
      default:
        if (c >= '0' && c <= '3') {
          if (pos_ + 2 > text_.size()) return false;
          int v = c - '0';
          for (int i = 0; i < 2; ++i) {
            const char d = text_[pos_++];
            if (d < '0' || d > '7') return false;
            v = v * 8 + (d - '0');
          }
          AppendUtf8(out, static_cast<uint32_t>(v));
          return true;
        }
        return false;
    }
  }

  // Hex decodes `digits` hex digits at pos_ as a code point and appends it in UTF-8.
  bool Hex(std::string& out, int digits) {
    if (pos_ + digits > text_.size()) return false;
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      const char d = text_[pos_++];
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(d))) return false;
      v = v * 16 + static_cast<uint32_t>(absl::ascii_isdigit(static_cast<unsigned char>(d))
                                             ? d - '0'
                                             : absl::ascii_tolower(d) - 'a' + 10);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return false;
    AppendUtf8(out, v);
    return true;
  }

  absl::string_view text_;
  size_t pos_ = 0;
};

class Parser {
 public:
  Parser(absl::string_view text, Ast* ast, std::vector<Issue>* errors)
      : lexer_(text), ast_(ast), errors_(errors) {
    Advance();
  }

  bool Run() {
    const int root = Expr();
    if (failed_) return false;
    if (tok_.kind != Tok::kEnd) {
      Fail(tok_.offset, absl::StrCat("unexpected ", Describe(tok_), " after the expression"));
      return false;
    }
    ast_->root = root;
    return true;
  }

 private:
  static std::string Describe(const Token& t) {
    switch (t.kind) {
      case Tok::kEnd:
        return "end of expression";
      case Tok::kIdent:
        return absl::StrCat("'", t.text, "'");
      case Tok::kPunct:
        return absl::StrCat("'", t.text, "'");
      case Tok::kString:
        return "string literal";
      default:
        return "number";
    }
  }

  void Advance() {
    tok_ = lexer_.Next();
    if (tok_.kind == Tok::kError) Fail(tok_.offset, tok_.text);
  }
  bool Is(absl::string_view punct) const { return tok_.kind == Tok::kPunct && tok_.text == punct; }
  bool Accept(absl::string_view punct) {
    if (!Is(punct)) return false;
    Advance();
    return true;
  }
  void Expect(absl::string_view punct) {
    if (failed_) return;
    if (!Accept(punct)) {
      Fail(tok_.offset, absl::StrCat("expected '", punct, "', got ", Describe(tok_)));
    }
  }
  int Fail(int offset, std::string message) {
    if (!failed_) errors_->push_back(Issue{offset, std::move(message)});
    failed_ = true;
    return 0;
  }
  int Add(Node node) {
    ast_->nodes.push_back(std::move(node));
    return static_cast<int>(ast_->nodes.size()) - 1;
  }
  int Operator(NodeKind kind, int offset, std::string op, std::vector<int> args) {
    Node n;
    n.kind = kind;
    n.offset = offset;
    n.text = std::move(op);
    n.args = std::move(args);
    return Add(std::move(n));
  }

  // Depth guards every recursive production.
  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) { ++p.depth_; }
    ~DepthGuard() { --p.depth_; }
  };
  bool TooDeep() {
    if (depth_ <= kMaxDepth) return false;
    Fail(tok_.offset,
         absl::StrCat("expression nested too deeply (more than ", kMaxDepth, " levels)"));
    return true;
  }

  int Expr() {
    DepthGuard guard(*this);
    if (TooDeep() || failed_) return 0;
    const int condition = Or();
    if (failed_ || !Is("?")) return condition;
    const int offset = tok_.offset;
    Advance();
    const int then = Or();
    Expect(":");
    const int otherwise = Expr();
    return Operator(NodeKind::kTernary, offset, "?:", {condition, then, otherwise});
  }

  template <typename Next>
  int Chain(std::initializer_list<absl::string_view> ops, Next next) {
    int left = (this->*next)();
    int links = 0;
    while (!failed_) {
      absl::string_view op;
      for (absl::string_view candidate : ops) {
        if (Is(candidate)) op = candidate;
      }
      if (op.empty()) break;
      // A left-deep chain is as deep as it is long: bound it like nesting.
      if (++links + depth_ > kMaxDepth) {
        Fail(tok_.offset,
             absl::StrCat("expression nested too deeply (more than ", kMaxDepth, " levels)"));
        break;
      }
      const int offset = tok_.offset;
      Advance();
      const int right = (this->*next)();
      left = Operator(NodeKind::kBinary, offset, std::string(op), {left, right});
    }
    return left;
  }

  int Or() { return Chain({"||"}, &Parser::And); }
  int And() { return Chain({"&&"}, &Parser::Relation); }
  int Relation() {
    if (tok_.kind == Tok::kIdent && tok_.text == "in") {
      return Fail(tok_.offset, "expected an expression before 'in'");
    }
    int left = Sum();
    int links = 0;
    while (!failed_) {
      std::string op;
      if (tok_.kind == Tok::kPunct &&
          (tok_.text == "==" || tok_.text == "!=" || tok_.text == "<" || tok_.text == "<=" ||
           tok_.text == ">" || tok_.text == ">=")) {
        op = tok_.text;
      } else if (tok_.kind == Tok::kIdent && tok_.text == "in") {
        op = "in";
      } else {
        break;
      }
      if (++links + depth_ > kMaxDepth) {
        return Fail(tok_.offset, absl::StrCat("expression nested too deeply (more than ", kMaxDepth,
                                              " levels)"));
      }
      const int offset = tok_.offset;
      Advance();
      const int right = Sum();
      left = Operator(NodeKind::kBinary, offset, op, {left, right});
    }
    return left;
  }
  int Sum() { return Chain({"+", "-"}, &Parser::Product); }
  int Product() { return Chain({"*", "/", "%"}, &Parser::Unary); }

  int Unary() {
    if (failed_) return 0;
    if (Is("!") || Is("-")) {
      DepthGuard guard(*this);
      if (TooDeep()) return 0;
      const std::string op = tok_.text;
      const int offset = tok_.offset;
      Advance();
      // -9223372036854775808 is the one int literal that only exists negated.
      if (op == "-" && (tok_.kind == Tok::kInt || tok_.kind == Tok::kDouble)) {
        Token literal = tok_;
        Advance();
        Node n;
        n.offset = offset;
        if (literal.kind == Tok::kInt) {
          n.kind = NodeKind::kInt;
          n.int_value = literal.uint_value == uint64_t{1} << 63
                            ? std::numeric_limits<int64_t>::min()
                            : -static_cast<int64_t>(literal.uint_value);
        } else {
          n.kind = NodeKind::kDouble;
          n.double_value = -literal.double_value;
        }
        return Member(Add(std::move(n)));
      }
      const int operand = Unary();
      return Operator(NodeKind::kUnary, offset, op, {operand});
    }
    return Member(Primary());
  }

  int Member(int operand) {
    int links = 0;
    while (!failed_) {
      if (++links + depth_ > kMaxDepth + 1) {
        return Fail(tok_.offset, absl::StrCat("expression nested too deeply (more than ", kMaxDepth,
                                              " levels)"));
      }
      if (Is(".")) {
        Advance();
        if (tok_.kind != Tok::kIdent) {
          return Fail(tok_.offset,
                      absl::StrCat("expected a field name after '.', got ", Describe(tok_)));
        }
        Node n;
        n.offset = tok_.offset;
        n.text = tok_.text;
        Advance();
        if (Is("(")) {
          Advance();
          n.kind = NodeKind::kCall;
          n.receiver = true;
          n.args.push_back(operand);
          Arguments(n.args, ")");
        } else {
          n.kind = NodeKind::kSelect;
          n.args.push_back(operand);
        }
        operand = Add(std::move(n));
      } else if (Is("[")) {
        const int offset = tok_.offset;
        Advance();
        const int index = Expr();
        Expect("]");
        operand = Operator(NodeKind::kIndex, offset, "[]", {operand, index});
      } else {
        break;
      }
    }
    return operand;
  }

  void Arguments(std::vector<int>& args, absl::string_view close) {
    if (Accept(close)) return;
    while (!failed_) {
      args.push_back(Expr());
      if (Accept(close)) return;
      if (!Accept(",")) {
        Fail(tok_.offset, absl::StrCat("expected ',' or '", close, "', got ", Describe(tok_)));
        return;
      }
      if (close == "]" && Accept(close)) return;  // a trailing comma in a list
    }
  }

  int Primary() {
    if (failed_) return 0;
    Node n;
    n.offset = tok_.offset;
    switch (tok_.kind) {
      case Tok::kInt:
        if (tok_.uint_value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          return Fail(tok_.offset, "integer literal out of range");
        }
        n.kind = NodeKind::kInt;
        n.int_value = static_cast<int64_t>(tok_.uint_value);
        Advance();
        return Add(std::move(n));
      case Tok::kUint:
        n.kind = NodeKind::kUint;
        n.uint_value = tok_.uint_value;
        Advance();
        return Add(std::move(n));
      case Tok::kDouble:
        n.kind = NodeKind::kDouble;
        n.double_value = tok_.double_value;
        Advance();
        return Add(std::move(n));
      case Tok::kString:
        n.kind = NodeKind::kString;
        n.text = tok_.text;
        Advance();
        return Add(std::move(n));
      case Tok::kIdent: {
        const std::string name = tok_.text;
        Advance();
        if (name == "true" || name == "false") {
          n.kind = NodeKind::kBool;
          n.bool_value = name == "true";
          return Add(std::move(n));
        }
        if (name == "null") {
          n.kind = NodeKind::kNull;
          return Add(std::move(n));
        }
        if (name == "in") return Fail(n.offset, "unexpected 'in'");
        n.text = name;
        if (Is("(")) {
          Advance();
          n.kind = NodeKind::kCall;
          Arguments(n.args, ")");
        } else {
          n.kind = NodeKind::kIdent;
        }
        return Add(std::move(n));
      }
      case Tok::kPunct:
        if (Accept("(")) {
          const int inner = Expr();
          Expect(")");
          return inner;
        }
        if (Accept("[")) {
          n.kind = NodeKind::kList;
          Arguments(n.args, "]");
          return Add(std::move(n));
        }
        if (Is("{")) return Fail(tok_.offset, "map literals are not supported");
        if (Is(".")) return Fail(tok_.offset, "unexpected '.'");
        return Fail(tok_.offset, absl::StrCat("unexpected ", Describe(tok_)));
      case Tok::kEnd:
        return Fail(tok_.offset, "unexpected end of expression");
      default:
        return Fail(tok_.offset, "unexpected token");
    }
  }

  Lexer lexer_;
  Ast* ast_;
  std::vector<Issue>* errors_;
  Token tok_;
  bool failed_ = false;
  int depth_ = 0;
};

}  // namespace

bool Parse(absl::string_view text, Ast* ast, std::vector<Issue>* errors) {
  if (text.size() > kMaxSourceBytes) {
    errors->push_back(Issue{static_cast<int>(kMaxSourceBytes),
                            absl::StrCat("expression longer than ", kMaxSourceBytes, " bytes")});
    return false;
  }
  Parser parser(text, ast, errors);
  return parser.Run();
}

}  // namespace agate::engine::expr::internal
