// agate's CEL subset: syntax and type errors with offsets, CEL run-time semantics, Observe,
// Fields, ConstantValue, warnings, and the schema against the proto descriptors.
#include <cmath>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/expr/program.h"
#include "engine/expr/schema.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace agate::engine::expr {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

Request Parse(absl::string_view text) {
  Request r;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(std::string(text), &r)) << text;
  return r;
}

// The request most evaluation cases run against.
const Request& Sample() {
  static const Request* r = new Request(Parse(R"pb(
    request_id: "r1"
    tenant_id: "t1"
    workflow_id: "w"
    action {
      type: "refund"
      amount: 250
      customer_facing: true
      requested_scopes: [ "read", "write" ]
    }
    model {
      confidence: 0.72
      sentiment: "calm"
      labels: [ "héllo" ]
    }
    signals { key: "retry" value: 2 }
    evidence { key: "ticket" value: "https://t/1" }
    attributes {
      fields {
        key: "pct"
        value { number_value: 35 }
      }
      fields {
        key: "tier"
        value { string_value: "gold" }
      }
      fields {
        key: "tags"
        value { list_value { values { string_value: "a" } } }
      }
      fields {
        key: "nested"
        value {
          struct_value {
            fields {
              key: "k"
              value { bool_value: true }
            }
          }
        }
      }
    }
  )pb"));
  return *r;
}

struct ErrorCase {
  std::string text;
  int offset;
  std::string message;
};

// A failing case names its expression (gtest would print the struct's bytes).
void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.text; }

class CompileErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(CompileErrorTest, ReportsTheErrorAtItsOffset) {
  const CompileResult r = Compile(GetParam().text);
  ASSERT_FALSE(r.errors.empty()) << GetParam().text;
  EXPECT_EQ(r.program, nullptr);
  EXPECT_EQ(r.errors[0].offset, GetParam().offset) << r.errors[0].message;
  EXPECT_THAT(r.errors[0].message, HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Syntax, CompileErrorTest,
    ::testing::Values(ErrorCase{"'abc", 0, "unterminated string literal"},
                      ErrorCase{"action.type == \"x", 15, "unterminated string literal"},
                      ErrorCase{"action.type == 'a\\qb'", 17, "invalid escape sequence"},
                      ErrorCase{"action.type == b'x'", 15, "bytes literals are not supported"},
                      ErrorCase{"{'a': 1}", 0, "map literals are not supported"},
                      ErrorCase{"action.type = 'x'", 12, "use '==' to compare"},
                      ErrorCase{"action.critical & true", 16, "use '&&'"},
                      ErrorCase{"action.critical &&", 18, "unexpected end of expression"},
                      ErrorCase{"(action.critical", 16, "expected ')'"},
                      ErrorCase{"action.", 7, "expected a field name after '.'"},
                      ErrorCase{"1 2", 2, "unexpected number after the expression"},
                      ErrorCase{"99999999999999999999 > 1", 0, "integer literal out of range"},
                      ErrorCase{std::string(40, '(') + "true" + std::string(40, ')'), 32,
                                "nested too deeply"},
                      ErrorCase{std::string(5000, ' ') + "true", 4096, "longer than 4096 bytes"},
                      ErrorCase{"action.type == \x01", 15, "unexpected character"}));

INSTANTIATE_TEST_SUITE_P(
    Types, CompileErrorTest,
    ::testing::Values(
        ErrorCase{"foo > 1", 0, "unknown field 'foo'; request fields are request_id, tenant_id"},
        ErrorCase{"action.critical && action.typo", 19,
                  "unknown field 'typo' in action; its fields are type, target"},
        ErrorCase{"model.sentiment < 0.5", 16,
                  "no matching overload for '<' applied to (string, double)"},
        ErrorCase{"action.amount + 1 > 2.0", 14,
                  "no matching overload for '+' applied to (double, int)"},
        ErrorCase{"action.amount % 2.0 > 0.0", 14, "no matching overload for '%'"},
        ErrorCase{"action.amount", 0, "condition must be bool, got double"},
        ErrorCase{"action == 1", 7, "select a field of the message"},
        ErrorCase{"frob(1)", 0, "unknown function 'frob'"},
        ErrorCase{"size(action.type, 1) > 0", 0, "'size' takes 1 argument, got 2"},
        ErrorCase{"action.type.matches('[')", 20, "invalid regular expression: missing ]"},
        ErrorCase{"action.type.matches(action.target)", 27, "must be a string literal"},
        ErrorCase{"count('retry', '10 minutes') > 3", 15, "invalid window"},
        ErrorCase{"count(action.type, '10m') > 3", 13, "signal of count() must be"},
        ErrorCase{"has(action)", 4, "has() needs a field selection"},
        ErrorCase{"has(action.nope)", 4, "unknown field 'nope' in action"},
        ErrorCase{"action.type + 'x' == 'y'", 12, "string concatenation is not supported"},
        ErrorCase{"[1, 2] == [1, 2]", 0, "list literals are only supported"},
        ErrorCase{"!action.amount", 0, "no matching overload for '!' applied to (double)"},
        ErrorCase{"action.type.contains(1)", 12, "no matching overload for 'contains'"},
        ErrorCase{"contains(action.type, 'x')", 0, "'contains' is a method"},
        ErrorCase{"1 in signals", 2, "no matching overload for 'in'"},
        ErrorCase{"action.critical && 1 in action.requested_scopes", 21,
                  "no matching overload for 'in' applied to (int, list(string))"},
        ErrorCase{"action.type in [1, 2u]", 12,
                  "no matching overload for 'in' applied to (string, list(int))"},
        ErrorCase{"action.amount in ['a', 'b']", 14,
                  "no matching overload for 'in' applied to (double, list(string))"}));

struct EvalCase {
  std::string text;
  std::string want;  // "true", "false" or "error:<code>"
};

void PrintTo(const EvalCase& c, std::ostream* os) { *os << c.text << " -> " << c.want; }

std::string EvalText(absl::string_view text, const Request& request = Sample(),
                     const EvalContext& context = {}) {
  const CompileResult r = Compile(text);
  if (!r.errors.empty()) return absl::StrCat("compile error: ", r.errors[0].message);
  const Outcome o = r.program->Evaluate(request, context);
  switch (o.kind()) {
    case Outcome::Kind::kTrue:
      return "true";
    case Outcome::Kind::kFalse:
      return "false";
    default:
      return absl::StrCat("error:", static_cast<int>(o.error_code()));
  }
}

const std::string kNoSuchKey = absl::StrCat("error:", static_cast<int>(ErrorCode::kNoSuchKey));
const std::string kNoOverload =
    absl::StrCat("error:", static_cast<int>(ErrorCode::kNoSuchOverload));
const std::string kOverflow = absl::StrCat("error:", static_cast<int>(ErrorCode::kOverflow));
const std::string kDivZero = absl::StrCat("error:", static_cast<int>(ErrorCode::kDivisionByZero));
const std::string kRange = absl::StrCat("error:", static_cast<int>(ErrorCode::kIndexOutOfRange));
const std::string kInvalid = absl::StrCat("error:", static_cast<int>(ErrorCode::kInvalidArgument));

class EvalTest : public ::testing::TestWithParam<EvalCase> {};

TEST_P(EvalTest, FollowsCelSemantics) { EXPECT_EQ(EvalText(GetParam().text), GetParam().want); }

INSTANTIATE_TEST_SUITE_P(
    Literals, EvalTest,
    ::testing::Values(
        EvalCase{"true", "true"}, EvalCase{"!true", "false"}, EvalCase{"0x1F == 31", "true"},
        EvalCase{"1u == 1", "true"}, EvalCase{".5 == 0.5", "true"}, EvalCase{"1e3 == 1000", "true"},
        EvalCase{"'\\x41\\u00e9\\101' == 'Aé\\101'", "true"}, EvalCase{"r'\\d' == '\\\\d'", "true"},
        EvalCase{"'''a'b''' == \"a'b\"", "true"}, EvalCase{"null == null", "true"},
        // In a string, \x and octal escapes are code points (UTF-8 encoded), not bytes.
        EvalCase{"'\\xe9' == 'é' && '\\351' == 'é' && size('\\xff') == 1", "true"},
        EvalCase{"-9223372036854775808 < 0", "true"}, EvalCase{"true ? false : true", "false"}));

INSTANTIATE_TEST_SUITE_P(
    Arithmetic, EvalTest,
    ::testing::Values(EvalCase{"2 + 3 * 4 == 14", "true"}, EvalCase{"(2 + 3) * 4 == 20", "true"},
                      EvalCase{"7 / 2 == 3 && 7 % 2 == 1", "true"},
                      EvalCase{"-7 / 2 == -3 && -7 % 2 == -1", "true"},
                      EvalCase{"10 - 2 - 3 == 5", "true"},
                      EvalCase{"9223372036854775807 + 1 > 0", kOverflow},
                      EvalCase{"-9223372036854775808 - 1 < 0", kOverflow},
                      EvalCase{"-(-9223372036854775808) > 0", kOverflow},
                      EvalCase{"0u - 1u > 0u", kOverflow}, EvalCase{"1 / 0 == 0", kDivZero},
                      EvalCase{"1 % 0 == 0", kDivZero}, EvalCase{"1.0 / 0.0 > 1e308", "true"},
                      EvalCase{"attributes.pct / 5.0 == 7.0", "true"},
                      EvalCase{"attributes.pct + 1 > 0", kNoOverload}));

INSTANTIATE_TEST_SUITE_P(
    Comparisons, EvalTest,
    ::testing::Values(
        EvalCase{"1 == 1.0 && 1u == 1.0 && 1 == 1u", "true"}, EvalCase{"-1 < 0u", "true"},
        EvalCase{"9223372036854775807 < 9223372036854775808.0", "true"},
        EvalCase{"9007199254740993 > 9007199254740992.0", "true"},
        EvalCase{"18446744073709551615u > 9223372036854775807", "true"},
        EvalCase{"model.confidence < 0.72", "false"}, EvalCase{"model.confidence <= 0.72", "true"},
        EvalCase{"action.amount > 250.0", "false"}, EvalCase{"action.amount >= 250", "true"},
        EvalCase{"'a' < 'b' && 'abc' > 'abb'", "true"}, EvalCase{"false < true", "true"},
        EvalCase{"attributes.tier == 'gold'", "true"},
        EvalCase{"attributes.tier == 1.0", "false"},  // heterogeneous equality
        EvalCase{"attributes.tier > 1.0", kNoOverload},
        EvalCase{"double('NaN') == double('NaN')", "false"},
        EvalCase{"double('NaN') != double('NaN')", "true"},
        EvalCase{"double('NaN') < 1.0", "false"}));

INSTANTIATE_TEST_SUITE_P(Logic, EvalTest,
                         ::testing::Values(
                             // Error absorption in every order.
                             EvalCase{"false && attributes.missing", "false"},
                             EvalCase{"attributes.missing && false", "false"},
                             EvalCase{"true && attributes.missing", kNoSuchKey},
                             EvalCase{"attributes.missing && true", kNoSuchKey},
                             EvalCase{"true || attributes.missing", "true"},
                             EvalCase{"attributes.missing || true", "true"},
                             EvalCase{"false || attributes.missing", kNoSuchKey},
                             EvalCase{"attributes.missing || false", kNoSuchKey},
                             EvalCase{"attributes.tier && true", kNoOverload},
                             EvalCase{"false ? attributes.missing : true", "true"},
                             EvalCase{"attributes.tier ? true : false", kNoOverload},
                             EvalCase{"!(1 > 2)", "true"}));

INSTANTIATE_TEST_SUITE_P(
    Containers, EvalTest,
    ::testing::Values(
        EvalCase{"'read' in action.requested_scopes", "true"},
        EvalCase{"'admin' in action.requested_scopes", "false"},
        EvalCase{"action.type in ['refund', 'credit']", "true"}, EvalCase{"1 in [1.0, 2]", "true"},
        EvalCase{"action.type in ['a','b','c','d','e','f','g','h','i','refund']", "true"},
        EvalCase{"action.type in ['a','b','c','d','e','f','g','h','i','j']", "false"},
        EvalCase{"'retry' in signals && !('timeout' in signals)", "true"},
        EvalCase{"'pct' in attributes", "true"}, EvalCase{"'a' in attributes.tags", "true"},
        EvalCase{"signals.retry == 2 && signals['retry'] == 2", "true"},
        EvalCase{"signals.timeout > 0", kNoSuchKey},
        EvalCase{"evidence.ticket.startsWith('https://')", "true"},
        EvalCase{"attributes.nested.k", "true"}, EvalCase{"attributes['nested']['k']", "true"},
        EvalCase{"attributes.tags[0] == 'a'", "true"},
        EvalCase{"attributes.tags[1] == 'a'", kRange},
        EvalCase{"action.requested_scopes[1] == 'write'", "true"},
        EvalCase{"attributes.tier.k", kNoOverload},
        // A list literal with an element that fails is an error, even when another matches.
        EvalCase{"1 in [1, attributes.missing]", kNoSuchKey},
        EvalCase{"!(1 in [1, attributes.missing])", kNoSuchKey},
        EvalCase{"size([1, attributes.missing]) == 2", kNoSuchKey},
        EvalCase{"attributes.pct in [35, attributes.pct]", "true"},
        // JSON objects compare as CEL maps.
        EvalCase{"attributes.nested == attributes.nested", "true"},
        EvalCase{"attributes.nested != attributes['nested']", "false"},
        EvalCase{"attributes.nested == attributes.tags", "false"}));

INSTANTIATE_TEST_SUITE_P(
    Functions, EvalTest,
    ::testing::Values(
        EvalCase{"has(action.amount) && !has(action.currency)", "true"},
        EvalCase{"has(action.requested_scopes) && !has(actor.scopes)", "true"},
        EvalCase{"has(attributes.pct) && !has(attributes.nope)", "true"},
        EvalCase{"has(attributes.nested.k)", "true"},
        EvalCase{"has(attributes.nope) && attributes.nope > 1.0", "false"},
        EvalCase{"size(model.labels[0]) == 5 && size('héllo') == 5", "true"},
        EvalCase{"action.requested_scopes.size() == 2 && size(signals) == 1", "true"},
        EvalCase{"size([1, 2, 3]) == 3", "true"},
        EvalCase{"action.type.contains('fun') && action.type.startsWith('re')", "true"},
        EvalCase{"action.type.endsWith('und') && !action.type.endsWith('x')", "true"},
        EvalCase{"action.type.matches('^re.u') && matches(action.type, 'fund$')", "true"},
        EvalCase{"action.type.matches('z')", "false"},
        EvalCase{"int('42') == 42 && uint('7') == 7u && double('1.5') == 1.5", "true"},
        EvalCase{"int(2.9) == 2 && int(-2.9) == -2", "true"}, EvalCase{"int('x') == 1", kInvalid},
        EvalCase{"int(1e19) == 1", kOverflow}, EvalCase{"uint(-1) == 1u", kOverflow},
        EvalCase{"uint(-0.5) == 0u", kOverflow},
        EvalCase{"uint(0.5) == 0u && uint(-0.0) == 0u", "true"},
        EvalCase{"string(attributes.tier) == 'gold'", "true"},
        EvalCase{"count('retry', '10m') == 2", "true"},
        EvalCase{"count('timeout', '10m') == 0", "true"}));

TEST(ExprTest, CountAsksTheCounterWhenThereIsOne) {
  struct FakeCounter : SignalCounter {
    mutable std::string asked;
    int64_t Count(const Request&, absl::string_view signal, absl::Duration window) const override {
      asked = absl::StrCat(signal, "/", absl::FormatDuration(window));
      return 7;
    }
  } counter;
  EXPECT_EQ(EvalText("count('retry', '10m') > 3", Sample(), {.counter = &counter}), "true");
  EXPECT_EQ(counter.asked, "retry/10m");
}

TEST(ExprTest, DescribesRunTimeErrors) {
  const CompileResult r = Compile("action.critical || attributes.missing > 1.0");
  ASSERT_TRUE(r.errors.empty());
  const Outcome o = r.program->Evaluate(Sample(), {});
  ASSERT_TRUE(o.is_error());
  EXPECT_TRUE(o.fired());
  EXPECT_EQ(o.error_offset(), 30);
  EXPECT_EQ(r.program->DescribeError(o), "no such key 'missing' in attributes.missing");
  const CompileResult div = Compile("1 / (signals.retry - 2) > 0");
  const Outcome d = div.program->Evaluate(Sample(), {});
  EXPECT_EQ(div.program->DescribeError(d), "division by zero in 1 / signals.retry - 2");
}

TEST(ExprTest, ObservesEveryReadOnceInSourceOrder) {
  const CompileResult r = Compile(
      "action.customer_facing && model.confidence < 0.9 && has(attributes.pct) && "
      "attributes.pct > 20.0 && count('retry', '10m') >= 0 && action.customer_facing && "
      "'read' in action.requested_scopes && attributes.absent == 1.0");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].message;
  std::vector<Observation> seen;
  r.program->Observe(Sample(), {}, &seen);
  std::vector<std::string> fields;
  for (const Observation& o : seen) fields.push_back(o.field);
  EXPECT_THAT(fields, ElementsAre("action.customer_facing", "model.confidence", "attributes.pct",
                                  "count(\"retry\", \"10m\")", "action.requested_scopes",
                                  "attributes.absent"));
  EXPECT_TRUE(seen[0].value.bool_value());
  EXPECT_DOUBLE_EQ(seen[1].value.number_value(), 0.72);
  EXPECT_EQ(seen[2].value.number_value(), 35);
  EXPECT_EQ(seen[3].value.number_value(), 2);
  EXPECT_EQ(seen[4].value.list_value().values_size(), 2);
  EXPECT_TRUE(seen[5].value.has_null_value());
  EXPECT_THAT(r.program->Fields(),
              ElementsAre("action.customer_facing", "model.confidence", "attributes.pct",
                          "signals.retry", "action.requested_scopes", "attributes.absent"));
}

TEST(ExprTest, FindsConditionsThatAreConstant) {
  struct Case {
    std::string text;
    std::optional<bool> want;
  } cases[] = {
      {"1 > 2", false},
      {"1 < 2", true},
      {"model.confidence > 1.0", false},
      {"model.confidence <= 1.0", true},
      {"action.amount >= 0.0", true},
      {"action.amount < 0.0", false},
      {"count('retry', '1m') < 0", false},
      {"action.critical && 1 > 2", false},
      {"action.critical || 2 > 1", true},
      {"'a' == 'a'", true},
      {"model.confidence < 0.72", std::nullopt},
      {"action.critical", std::nullopt},
      {"attributes.pct > 1.0", std::nullopt},
      {"action.amount > 250.0", std::nullopt},
      // Integers a double cannot hold compare exactly (found by fuzz_cel): not constant-false.
      {"9007199254740993 > 9007199254740992.0", std::nullopt},
      {"-9007199254740993 < -9007199254740992.0", std::nullopt},
      {"9223372036854775807 < 9223372036854775808.0", std::nullopt},
      {"18446744073709551615u < 18446744073709551616.0", std::nullopt},
      {"9007199254740992 >= 9007199254740992.0", true},
      {"size([1, 2]) >= 0", true},
      // Fails (and so fires) for a request without attributes.x.
      {"size([attributes.x]) < 0", std::nullopt},
  };
  for (const Case& c : cases) {
    const CompileResult r = Compile(c.text);
    ASSERT_TRUE(r.errors.empty()) << c.text;
    EXPECT_EQ(r.program->ConstantValue(), c.want) << c.text;
    // A constant condition has that value for every valid request.
    if (c.want.has_value()) {
      EXPECT_EQ(EvalText(c.text), *c.want ? "true" : "false") << c.text;
    }
  }
}

TEST(ExprTest, WarnsAboutUnguardedMapReads) {
  struct Case {
    std::string text;
    std::vector<std::string> warnings;
  } cases[] = {
      {"attributes.pct > 20.0",
       {"attributes.pct is read without has(attributes.pct): a request without it makes the "
        "condition fail (the trigger fires)"}},
      {"has(attributes.pct) && attributes.pct > 20.0", {}},
      {"'pct' in attributes && attributes.pct > 20.0", {}},
      {"!has(attributes.pct) || attributes.pct > 20.0", {}},
      {"has(attributes.pct) ? attributes.pct > 20.0 : false", {}},
      {"has(attributes.pct) || attributes.pct > 20.0",
       {"attributes.pct is read without has(attributes.pct): a request without it makes the "
        "condition fail (the trigger fires)"}},
      {"count('retry', '10m') > 3", {}},
      {"signals.retry > 3",
       {"signals.retry is read without has(signals.retry): a request without it makes the "
        "condition fail (the trigger fires)"}},
  };
  for (const Case& c : cases) {
    const CompileResult r = Compile(c.text);
    ASSERT_TRUE(r.errors.empty()) << c.text;
    std::vector<std::string> got;
    for (const Issue& w : r.warnings) got.push_back(w.message);
    EXPECT_EQ(got, c.warnings) << c.text;
  }
  EXPECT_EQ(Compile("action.critical && attributes.pct > 1.0").warnings[0].offset, 19);
}

TEST(ExprTest, NeverCrashesOnHostileInput) {
  const std::string inputs[] = {"",
                                "(",
                                ")",
                                "[",
                                "]]]",
                                "'",
                                "\"\"\"",
                                "1..2",
                                "a.b.c",
                                "!!!!!",
                                "-----1",
                                "1 ? 2",
                                "x[",
                                "has(",
                                "\\",
                                "@",
                                "in",
                                "1 in",
                                "[1,2,]",
                                "f(,)",
                                "0x",
                                "1e",
                                "'\\u12'",
                                "r",
                                "size()",
                                "count('a')",
                                std::string(3000, '!') + "true",
                                std::string(100, '[') + "1"};
  for (const std::string& in : inputs) {
    const CompileResult r = Compile(in);
    EXPECT_TRUE(r.program != nullptr || !r.errors.empty()) << in;
  }
}

TEST(ExprTest, TheBundledMatrixConditionsCompileCleanly) {
  const char* conditions[] = {
      "action.customer_facing && model.confidence < 0.72",
      "model.sentiment in [\"hostile\", \"legal_risk\"] || \"legal_risk\" in model.labels",
      "action.type == \"discount\" && has(attributes.discount_pct) && "
      "attributes.discount_pct > 20.0",
      "count(\"retry\", \"10m\") > 3",
      "has(action.target_tenant_id) && tenant_id != action.target_tenant_id",
      "\"admin\" in action.requested_scopes",
      "action.type in [\"refund\", \"issue_credit\", \"credit\"] && action.amount > 250.0",
      "action.irreversible && action.amount > 250.0",
  };
  for (const char* c : conditions) {
    const CompileResult r = Compile(c);
    EXPECT_THAT(r.errors, IsEmpty()) << c;
    EXPECT_THAT(r.warnings, IsEmpty()) << c;
    EXPECT_EQ(r.program->ConstantValue(), std::nullopt) << c;
  }
}

// The schema must know every field of the request messages, so the two cannot drift.
TEST(ExprTest, SchemaCoversEveryFieldOfTheRequest) {
  using internal::Field;
  const std::pair<const google::protobuf::Descriptor*, Field> messages[] = {
      {v1::EvaluateRequest::descriptor(), Field::kNone}, {v1::Action::descriptor(), Field::kAction},
      {v1::Actor::descriptor(), Field::kActor},          {v1::Model::descriptor(), Field::kModel},
      {v1::Approval::descriptor(), Field::kApproval},
  };
  for (const auto& [descriptor, parent] : messages) {
    for (int i = 0; i < descriptor->field_count(); ++i) {
      const std::string& name = descriptor->field(i)->name();
      EXPECT_NE(internal::FindField(parent, name), nullptr)
          << descriptor->full_name() << "." << name << " is not in engine/expr/schema.cc";
    }
  }
  EXPECT_EQ(internal::AllFields().size(), 29u);
}

}  // namespace
}  // namespace agate::engine::expr

namespace agate::engine::expr {
namespace {

TEST(ExprTest, FindsTheActionTypesAConditionRequires) {
  using Types = std::optional<std::vector<std::string>>;
  struct Case {
    std::string text;
    Types want;
  } cases[] = {
      {"action.type == 'refund'", Types({"refund"})},
      {"'refund' == action.type && action.amount > 1.0", Types({"refund"})},
      {"action.amount > 1.0 && action.type in ['refund', 'credit']", Types({"refund", "credit"})},
      {"action.type == 'refund' || action.amount > 1.0", std::nullopt},
      {"!(action.type == 'refund')", std::nullopt},
      {"action.type in ['refund', attributes.t]", std::nullopt},
      {"action.critical", std::nullopt},
  };
  for (const Case& c : cases) {
    const CompileResult r = Compile(c.text);
    ASSERT_TRUE(r.errors.empty()) << c.text;
    EXPECT_EQ(r.program->RequiredActionTypes(), c.want) << c.text;
  }
}

}  // namespace
}  // namespace agate::engine::expr
