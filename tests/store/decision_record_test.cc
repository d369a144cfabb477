#include "store/decision_record.h"

#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace agate::store {
namespace {

using ::testing::HasSubstr;

const absl::Time kDecidedAt = absl::FromUnixMillis(1'795'000'000'123);  // 2026-11-18T11:06:40.123Z

// Parse checks that the body is valid JSON once wrapped in braces.
google::protobuf::Struct Parse(const std::string& body) {
  google::protobuf::Struct s;
  const auto status = google::protobuf::util::JsonStringToMessage("{" + body + "}", &s);
  EXPECT_TRUE(status.ok()) << status << "\n" << body;
  return s;
}

TEST(DecisionRecordTest, AllowRecordHasEveryFieldInOrder) {
  v1::EvaluateRequest request;
  request.set_request_id("r1");
  request.set_tenant_id("acme");
  v1::EvaluateResponse response;
  response.set_decision_id("01M871D531XSD7ZVR000000000");
  response.set_verdict(v1::VERDICT_ALLOW);
  response.set_matrix_version("3");
  EXPECT_EQ(DecisionRecordBody(request, response, "d1g3st", kDecidedAt),
            R"("time":"2026-11-18T11:06:40.123Z","request_id":"r1","tenant_id":"acme",)"
            R"("request_digest":"d1g3st","decision_id":"01M871D531XSD7ZVR000000000",)"
            R"("verdict":"ALLOW","lane":"","case_ids":[],"fired":[],"matrix_version":"3")");
}

TEST(DecisionRecordTest, EscalationCarriesCasesFiredTriggersValuesAndReason) {
  v1::EvaluateRequest request;
  request.set_request_id("r2");
  request.set_tenant_id("acme");
  v1::EvaluateResponse response;
  response.set_decision_id("d2");
  response.set_verdict(v1::VERDICT_BLOCK);
  response.set_lane("financial");
  response.add_case_ids("case_1");
  response.add_case_ids("case_2");
  response.set_matrix_version("3");
  response.set_reason("workflow \"refunds\" is paused");
  v1::FiredTrigger* f = response.add_fired();
  f->set_trigger_id("refund-over-limit");
  f->set_lane("financial");
  f->set_verdict(v1::VERDICT_BLOCK);
  v1::ObservedValue* v = f->add_values();
  v->set_field("action.type");
  v->mutable_value()->set_string_value("refund");
  v = f->add_values();
  v->set_field("action.amount");
  v->mutable_value()->set_number_value(400);
  v = f->add_values();
  v->set_field("model.confidence");
  v->mutable_value()->set_number_value(0.72);
  v = f->add_values();
  v->set_field("action.irreversible");
  v->mutable_value()->set_bool_value(true);
  v = f->add_values();
  v->set_field("attributes.missing");
  v->mutable_value()->set_null_value(google::protobuf::NULL_VALUE);
  v = f->add_values();
  v->set_field("attributes.obj");
  auto& fields = *v->mutable_value()->mutable_struct_value()->mutable_fields();
  fields["z"].set_number_value(1);
  fields["a"].mutable_list_value()->add_values()->set_string_value("x");
  fields["a"].mutable_list_value()->add_values()->set_number_value(-2.5);
  fields["m"].set_number_value(std::numeric_limits<double>::quiet_NaN());
  v = f->add_values();
  v->set_field("attributes.big");
  v->mutable_value()->set_number_value(-std::numeric_limits<double>::infinity());
  v = f->add_values();
  v->set_field("unset");  // no value at all
  v1::FiredTrigger* g = response.add_fired();
  g->set_trigger_id("needs-attr");
  g->set_lane("policy");
  g->set_error("no such key: discount_pct");

  const std::string body = DecisionRecordBody(request, response, "d", kDecidedAt);
  EXPECT_EQ(body, R"("time":"2026-11-18T11:06:40.123Z","request_id":"r2","tenant_id":"acme",)"
                  R"("request_digest":"d","decision_id":"d2","verdict":"BLOCK","lane":"financial",)"
                  R"("case_ids":["case_1","case_2"],"fired":[)"
                  R"({"trigger_id":"refund-over-limit","lane":"financial","values":[)"
                  R"({"field":"action.type","value":"refund"},)"
                  R"({"field":"action.amount","value":400},)"
                  R"({"field":"model.confidence","value":0.72},)"
                  R"({"field":"action.irreversible","value":true},)"
                  R"({"field":"attributes.missing","value":null},)"
                  R"({"field":"attributes.obj","value":{"a":["x",-2.5],"m":"NaN","z":1}},)"
                  R"({"field":"attributes.big","value":"-Infinity"},)"
                  R"({"field":"unset","value":null}],"error":""},)"
                  R"({"trigger_id":"needs-attr","lane":"policy","values":[],)"
                  R"("error":"no such key: discount_pct"}],)"
                  R"("matrix_version":"3","reason":"workflow \"refunds\" is paused")");
  Parse(body);
}

TEST(DecisionRecordTest, NumbersRoundTripExactly) {
  v1::EvaluateRequest request;
  v1::EvaluateResponse response;
  v1::ObservedValue* v = response.add_fired()->add_values();
  for (double d : {0.1, 1.0 / 3, 1e300, 5e-324, 123456789012345678.0, -0.0}) {
    v->mutable_value()->set_number_value(d);
    const google::protobuf::Struct s = Parse(DecisionRecordBody(request, response, "", kDecidedAt));
    const double got = s.fields()
                           .at("fired")
                           .list_value()
                           .values(0)
                           .struct_value()
                           .fields()
                           .at("values")
                           .list_value()
                           .values(0)
                           .struct_value()
                           .fields()
                           .at("value")
                           .number_value();
    EXPECT_EQ(got, d);
  }
}

TEST(DecisionRecordTest, EscapesStringsAndReplacesInvalidUtf8) {
  v1::EvaluateRequest request;
  request.set_request_id("a\"b\\c\n\x01");
  request.set_tenant_id("t\xff\xc3\xa9");
  v1::EvaluateResponse response;
  const std::string body = DecisionRecordBody(request, response, "", kDecidedAt);
  EXPECT_THAT(body, HasSubstr(R"("request_id":"a\"b\\c\n\u0001")"));
  EXPECT_THAT(body, HasSubstr("\"tenant_id\":\"t\\ufffd\xc3\xa9\""));
  const google::protobuf::Struct s = Parse(body);
  EXPECT_EQ(s.fields().at("request_id").string_value(), "a\"b\\c\n\x01");
  EXPECT_EQ(s.fields().at("tenant_id").string_value(), "t\xef\xbf\xbd\xc3\xa9");
}

TEST(DecisionRecordTest, AnyBytesInAnyStringGiveValidJson) {
  std::mt19937 rng(11);
  const auto random_string = [&] {
    std::string s(rng() % 16, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    return s;
  };
  for (int i = 0; i < 300; ++i) {
    v1::EvaluateRequest request;
    request.set_request_id(random_string());
    v1::EvaluateResponse response;
    response.set_lane(random_string());
    response.add_case_ids(random_string());
    response.set_reason(random_string());
    v1::FiredTrigger* f = response.add_fired();
    f->set_error(random_string());
    v1::ObservedValue* v = f->add_values();
    v->set_field(random_string());
    (*v->mutable_value()->mutable_struct_value()->mutable_fields())[random_string()]
        .set_string_value(random_string());
    Parse(DecisionRecordBody(request, response, random_string(), kDecidedAt));
  }
}

TEST(DecisionRecordTest, FormatsTimeAsRfc3339UtcMilliseconds) {
  std::mt19937_64 rng(3);
  std::vector<absl::Time> times = {
      absl::UnixEpoch(),
      absl::FromUnixMillis(-1),  // 1969-12-31
      absl::FromCivil(absl::CivilSecond(2024, 2, 29, 23, 59, 59), absl::UTCTimeZone()),
      absl::FromCivil(absl::CivilSecond(2000, 3, 1, 0, 0, 0), absl::UTCTimeZone()),
      absl::FromCivil(absl::CivilSecond(9999, 12, 31, 23, 59, 59), absl::UTCTimeZone()) +
          absl::Milliseconds(999),
      absl::FromUnixNanos(1'795'000'000'123'999'999),  // rounds down to .123
  };
  for (int i = 0; i < 2000; ++i) {
    // Years 1019..9891: absl's %Y does not pad years below 1000.
    times.push_back(absl::FromUnixMillis(static_cast<int64_t>(rng() % 280'000'000'000'000ULL) -
                                         30'000'000'000'000));
  }
  for (absl::Time t : times) {
    std::string got;
    AppendRfc3339Millis(t, &got);
    EXPECT_EQ(got, absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone()));
  }
  std::string early;
  AppendRfc3339Millis(absl::FromCivil(absl::CivilSecond(1, 2, 3, 4, 5, 6), absl::UTCTimeZone()),
                      &early);
  EXPECT_EQ(early, "0001-02-03T04:05:06.000Z");
  std::string clamped;
  AppendRfc3339Millis(absl::InfiniteFuture(), &clamped);
  EXPECT_EQ(clamped, "9999-12-31T23:59:59.999Z");
  clamped.clear();
  AppendRfc3339Millis(absl::InfinitePast(), &clamped);
  EXPECT_EQ(clamped, "0001-01-01T00:00:00.000Z");
}

}  // namespace
}  // namespace agate::store

namespace agate::store {
namespace {

// A log line as DecisionLog writes it around a body.
std::string LineOf(absl::string_view body) {
  return absl::StrCat("{\"seq\":7,", body, ",\"prev\":\"", std::string(64, '0'), "\",\"hash\":\"",
                      std::string(64, 'a'), "\"}");
}

TEST(ParseAllowRecordTest, RebuildsTheAllowAnswerFromItsRecord) {
  agate::v1::EvaluateRequest request;
  request.set_request_id("r\"1");
  request.set_tenant_id("acme");
  agate::v1::EvaluateResponse response;
  response.set_decision_id("01M8ABC");
  response.set_verdict(agate::v1::VERDICT_ALLOW);
  response.set_matrix_version("3");
  response.set_reason("approval.case_id c not redeemed: no such case");
  const std::string digest(32, '\x9f');
  const absl::Time at = absl::FromUnixMillis(1'800'000'000'123);
  std::optional<RecordedAllow> r = ParseAllowRecord(
      LineOf(DecisionRecordBody(request, response, absl::BytesToHexString(digest), at)));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->key, std::string("acme\0r\"1", 8));
  EXPECT_EQ(r->digest, digest);
  EXPECT_EQ(r->decided_at, at);
  EXPECT_EQ(r->response.SerializeAsString(), response.SerializeAsString());
}

TEST(ParseAllowRecordTest, RefusesEscalationsAndMalformedLines) {
  agate::v1::EvaluateRequest request;
  request.set_request_id("r1");
  request.set_tenant_id("acme");
  agate::v1::EvaluateResponse hold;
  hold.set_decision_id("d");
  hold.set_verdict(agate::v1::VERDICT_HOLD);
  const std::string hex(64, 'f');
  EXPECT_FALSE(ParseAllowRecord(LineOf(DecisionRecordBody(request, hold, hex, absl::Now()))));
  agate::v1::EvaluateResponse allow = hold;
  allow.set_verdict(agate::v1::VERDICT_ALLOW);
  EXPECT_TRUE(ParseAllowRecord(LineOf(DecisionRecordBody(request, allow, hex, absl::Now()))));
  EXPECT_FALSE(ParseAllowRecord(LineOf(DecisionRecordBody(request, allow, "xyz", absl::Now()))));
  EXPECT_FALSE(ParseAllowRecord("not json"));
  EXPECT_FALSE(ParseAllowRecord("{\"verdict\":\"ALLOW\"}"));
  EXPECT_FALSE(ParseAllowRecord(""));
}

}  // namespace
}  // namespace agate::store
