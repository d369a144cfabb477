#include "store/decision_record.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/json_string.h"
#include "engine/verdict.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace agate::store {
namespace {

// Deeper values are written as null (the server's request limits allow nesting 8).
constexpr int kMaxDepth = 64;

// PutDigits writes value (>= 0) as exactly width decimal digits at p and returns p + width.
char* PutDigits(int64_t value, int width, char* p) {
  for (int i = width - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  return p + width;
}

void AppendNumber(double d, std::string* out) {
  if (std::isnan(d)) {
    out->append("\"NaN\"");
  } else if (std::isinf(d)) {
    out->append(d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else {
    char buf[32];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), d);  // shortest round trip
    out->append(buf, ec == std::errc() ? static_cast<size_t>(end - buf) : 0);
  }
}

void AppendValue(const google::protobuf::Value& v, int depth, std::string* out) {
  if (depth > kMaxDepth) {
    out->append("null");
    return;
  }
  switch (v.kind_case()) {
    case google::protobuf::Value::kNumberValue:
      AppendNumber(v.number_value(), out);
      return;
    case google::protobuf::Value::kStringValue:
      AppendJsonString(v.string_value(), out);
      return;
    case google::protobuf::Value::kBoolValue:
      out->append(v.bool_value() ? "true" : "false");
      return;
    case google::protobuf::Value::kStructValue: {
      // Map order is unspecified; sorted keys make equal values equal records.
      std::vector<std::pair<const std::string*, const google::protobuf::Value*>> fields;
      fields.reserve(v.struct_value().fields_size());
      for (const auto& [key, value] : v.struct_value().fields()) fields.emplace_back(&key, &value);
      std::sort(fields.begin(), fields.end(),
                [](const auto& a, const auto& b) { return *a.first < *b.first; });
      out->push_back('{');
      for (size_t i = 0; i < fields.size(); ++i) {
        if (i > 0) out->push_back(',');
        AppendJsonString(*fields[i].first, out);
        out->push_back(':');
        AppendValue(*fields[i].second, depth + 1, out);
      }
      out->push_back('}');
      return;
    }
    case google::protobuf::Value::kListValue: {
      out->push_back('[');
      const auto& values = v.list_value().values();
      for (int i = 0; i < values.size(); ++i) {
        if (i > 0) out->push_back(',');
        AppendValue(values[i], depth + 1, out);
      }
      out->push_back(']');
      return;
    }
    case google::protobuf::Value::kNullValue:
    case google::protobuf::Value::KIND_NOT_SET:
      out->append("null");
      return;
  }
  out->append("null");
}

// AppendMember appends prefix (the literal `,"key":` or `{"key":`) and value as a JSON string.
void AppendMember(absl::string_view prefix, absl::string_view value, std::string* out) {
  out->append(prefix.data(), prefix.size());
  AppendJsonString(value, out);
}

}  // namespace

void AppendRfc3339Millis(absl::Time t, std::string* out) {
  constexpr int64_t kMillisPerDay = 86'400'000;
  constexpr int64_t kMin = -62'135'596'800'000;  // 0001-01-01T00:00:00.000Z
  constexpr int64_t kMax = 253'402'300'799'999;  // 9999-12-31T23:59:59.999Z
  const int64_t ms = std::clamp(absl::ToUnixMillis(t), kMin, kMax);
  int64_t days = ms / kMillisPerDay;
  int64_t in_day = ms % kMillisPerDay;
  if (in_day < 0) {
    in_day += kMillisPerDay;
    --days;
  }
  // Civil date from days since 1970-01-01 (H. Hinnant, "chrono-Compatible Low-Level Date
  // Algorithms", civil_from_days).
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);

  char buf[24];  // YYYY-MM-DDTHH:MM:SS.mmmZ
  char* p = PutDigits(year, 4, buf);
  *p++ = '-';
  p = PutDigits(month, 2, p);
  *p++ = '-';
  p = PutDigits(day, 2, p);
  *p++ = 'T';
  p = PutDigits(in_day / 3'600'000, 2, p);
  *p++ = ':';
  p = PutDigits(in_day / 60'000 % 60, 2, p);
  *p++ = ':';
  p = PutDigits(in_day / 1000 % 60, 2, p);
  *p++ = '.';
  p = PutDigits(in_day % 1000, 3, p);
  *p++ = 'Z';
  out->append(buf, static_cast<size_t>(p - buf));
}

std::string DecisionRecordBody(const agate::v1::EvaluateRequest& request,
                               const agate::v1::EvaluateResponse& response,
                               absl::string_view request_digest, absl::Time decided_at) {
  std::string out;
  out.reserve(256 + request.request_id().size() + request.tenant_id().size() +
              request_digest.size() + response.decision_id().size() +
              response.matrix_version().size() + response.reason().size() +
              160 * static_cast<size_t>(response.fired_size() + response.case_ids_size()));
  AppendDecisionRecordBody(request, response, request_digest, decided_at, &out);
  return out;
}

void AppendDecisionRecordBody(const agate::v1::EvaluateRequest& request,
                              const agate::v1::EvaluateResponse& response,
                              absl::string_view request_digest, absl::Time decided_at,
                              std::string* out_string) {
  std::string& out = *out_string;
  out.append("\"time\":\"");
  AppendRfc3339Millis(decided_at, &out);
  out.push_back('"');
  AppendMember(",\"request_id\":", request.request_id(), &out);
  AppendMember(",\"tenant_id\":", request.tenant_id(), &out);
  AppendMember(",\"request_digest\":", request_digest, &out);
  AppendMember(",\"decision_id\":", response.decision_id(), &out);
  AppendMember(",\"verdict\":", engine::VerdictName(response.verdict()), &out);
  AppendMember(",\"lane\":", response.lane(), &out);
  out.append(",\"case_ids\":[");
  for (int i = 0; i < response.case_ids_size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendJsonString(response.case_ids(i), &out);
  }
  out.append("],\"fired\":[");
  for (int i = 0; i < response.fired_size(); ++i) {
    const agate::v1::FiredTrigger& f = response.fired(i);
    AppendMember(i > 0 ? ",{\"trigger_id\":" : "{\"trigger_id\":", f.trigger_id(), &out);
    AppendMember(",\"lane\":", f.lane(), &out);
    out.append(",\"values\":[");
    for (int k = 0; k < f.values_size(); ++k) {
      AppendMember(k > 0 ? ",{\"field\":" : "{\"field\":", f.values(k).field(), &out);
      out.append(",\"value\":");
      AppendValue(f.values(k).value(), 0, &out);
      out.push_back('}');
    }
    AppendMember("],\"error\":", f.error(), &out);
    out.push_back('}');
  }
  AppendMember("],\"matrix_version\":", response.matrix_version(), &out);
  if (!response.reason().empty()) AppendMember(",\"reason\":", response.reason(), &out);
}

namespace {

void AppendPrincipal(const agate::v1::Principal& p, std::string* out) {
  AppendMember(",\"principal\":{\"subject\":", p.subject(), out);
  AppendMember(",\"issuer\":", p.issuer(), out);
  AppendMember(",\"token_id\":", p.token_id(), out);
  AppendMember(",\"certificate_sha256\":", p.certificate_sha256(), out);
  std::string kind = agate::v1::PrincipalKind_Name(p.kind());
  AppendMember(",\"kind\":", absl::string_view(kind).substr(sizeof("PRINCIPAL_KIND_") - 1), out);
  out->push_back('}');
}

void AppendTime(absl::Time t, std::string* out) {
  out->append("\"time\":\"");
  AppendRfc3339Millis(t, out);
  out->push_back('"');
}

}  // namespace

void AppendCaseEventBody(const agate::v1::Case& c, const agate::v1::Transition& transition,
                         std::string* out) {
  AppendTime(absl::FromUnixSeconds(transition.time().seconds()) +
                 absl::Nanoseconds(transition.time().nanos()),
             out);
  AppendMember(",\"event\":", "case", out);
  AppendMember(",\"case_id\":", c.id(), out);
  AppendMember(",\"tenant_id\":", c.tenant_id(), out);
  AppendMember(",\"lane\":", c.lane(), out);
  std::string state = agate::v1::CaseState_Name(transition.state());
  AppendMember(",\"state\":", absl::string_view(state).substr(sizeof("CASE_STATE_") - 1), out);
  AppendMember(",\"transition\":", transition.event(), out);
  AppendMember(",\"comment\":", transition.comment(), out);
  AppendPrincipal(transition.principal(), out);
}

void AppendKillSwitchBody(const agate::v1::KillSwitch& change, std::string* out) {
  AppendTime(
      absl::FromUnixSeconds(change.set_at().seconds()) + absl::Nanoseconds(change.set_at().nanos()),
      out);
  AppendMember(",\"event\":", "kill_switch", out);
  std::string scope = agate::v1::KillScope_Name(change.scope());
  AppendMember(",\"scope\":", absl::string_view(scope).substr(sizeof("KILL_SCOPE_") - 1), out);
  AppendMember(",\"tenant_id\":", change.tenant_id(), out);
  AppendMember(",\"value\":", change.value(), out);
  out->append(change.engaged() ? ",\"engaged\":true" : ",\"engaged\":false");
  AppendMember(",\"reason\":", change.reason(), out);
  AppendPrincipal(change.set_by(), out);
}

void AppendRefusalBody(absl::Time time, absl::string_view method, absl::string_view code,
                       absl::string_view message, const agate::v1::Principal& principal,
                       std::string* out) {
  AppendTime(time, out);
  AppendMember(",\"event\":", "refused", out);
  AppendMember(",\"method\":", method, out);
  AppendMember(",\"code\":", code, out);
  AppendMember(",\"message\":", message, out);
  AppendPrincipal(principal, out);
}

std::optional<RecordedAllow> ParseAllowRecord(absl::string_view line) {
  google::protobuf::Struct record;
  if (!google::protobuf::util::JsonStringToMessage(std::string(line), &record).ok()) {
    return std::nullopt;
  }
  const auto& f = record.fields();
  auto text = [&](const char* name) -> const std::string* {
    auto it = f.find(name);
    return it != f.end() && it->second.kind_case() == google::protobuf::Value::kStringValue
               ? &it->second.string_value()
               : nullptr;
  };
  const std::string* verdict = text("verdict");
  const std::string* time = text("time");
  const std::string* request_id = text("request_id");
  const std::string* tenant_id = text("tenant_id");
  const std::string* digest = text("request_digest");
  const std::string* decision_id = text("decision_id");
  const std::string* version = text("matrix_version");
  if (verdict == nullptr || *verdict != engine::VerdictName(agate::v1::VERDICT_ALLOW) ||
      time == nullptr || request_id == nullptr || tenant_id == nullptr || digest == nullptr ||
      decision_id == nullptr || version == nullptr) {
    return std::nullopt;
  }
  RecordedAllow out;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, *time, &out.decided_at, &error)) return std::nullopt;
  if (digest->size() % 2 != 0 ||
      !std::all_of(digest->begin(), digest->end(), absl::ascii_isxdigit)) {
    return std::nullopt;
  }
  out.digest = absl::HexStringToBytes(*digest);
  out.key = absl::StrCat(*tenant_id, absl::string_view("\0", 1), *request_id);
  out.response.set_decision_id(*decision_id);
  out.response.set_verdict(agate::v1::VERDICT_ALLOW);
  out.response.set_matrix_version(*version);
  if (const std::string* reason = text("reason")) out.response.set_reason(*reason);
  if (auto ids = f.find("case_ids");
      ids != f.end() && ids->second.kind_case() == google::protobuf::Value::kListValue) {
    for (const google::protobuf::Value& id : ids->second.list_value().values()) {
      out.response.add_case_ids(id.string_value());
    }
  }
  return out;
}

}  // namespace agate::store
