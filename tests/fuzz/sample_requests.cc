#include "tests/fuzz/sample_requests.h"

#include <cstdio>
#include <cstdlib>

#include "google/protobuf/text_format.h"

namespace agate::fuzz {
namespace {

struct Sample {
  const char* name;
  const char* text;  // agate.v1.EvaluateRequest in text format
};

constexpr Sample kSamples[] = {
    {"minimal", R"pb(request_id: "r1" tenant_id: "acme")pb"},
    {"allow-reply", R"pb(
       request_id: "r2"
       tenant_id: "acme"
       agent_id: "agent-7"
       workflow_id: "support"
       item_id: "ticket-1"
       action { type: "send_reply" customer_facing: true target: "customer@example.com" }
       model { confidence: 0.93 sentiment: "neutral" }
     )pb"},
    {"low-confidence-hostile", R"pb(
       request_id: "r3"
       tenant_id: "acme"
       workflow_id: "support"
       item_id: "ticket-2"
       action { type: "send_reply" customer_facing: true }
       model { confidence: 0.4 sentiment: "hostile" labels: "legal_risk" labels: "refund" }
       evidence { key: "original_input" value: "where is my order?" }
       evidence { key: "proposed_action" value: "reply: sorry" }
     )pb"},
    {"refund-over-limit", R"pb(
       request_id: "r4"
       tenant_id: "acme"
       workflow_id: "refunds"
       item_id: "order-7"
       action { type: "refund" amount: 400 currency: "USD" irreversible: true critical: true }
       actor { credential_id: "cred-1" role: "agent" scopes: "refunds:write" }
     )pb"},
    {"tenant-mismatch-admin", R"pb(
       request_id: "r5"
       tenant_id: "acme"
       workflow_id: "accounts"
       item_id: "account-9"
       action {
         type: "change_account"
         target_tenant_id: "globex"
         requested_scopes: "admin"
         requested_scopes: "read"
       }
       actor { credential_id: "cred-2" role: "agent" scopes: "read" }
     )pb"},
    {"discount-attributes", R"pb(
       request_id: "r6"
       tenant_id: "acme"
       workflow_id: "sales"
       item_id: "quote-3"
       action { type: "discount" amount: 12.5 }
       attributes {
         fields {
           key: "discount_pct"
           value { number_value: 25 }
         }
         fields {
           key: "tier"
           value { string_value: "gold" }
         }
         fields {
           key: "vip"
           value { bool_value: true }
         }
         fields {
           key: "none"
           value { null_value: NULL_VALUE }
         }
         fields {
           key: "tags"
           value {
             list_value {
               values { string_value: "a" }
               values { number_value: 2 }
             }
           }
         }
         fields {
           key: "customer"
           value {
             struct_value {
               fields {
                 key: "age_days"
                 value { number_value: 3 }
               }
             }
           }
         }
       }
     )pb"},
    {"retry-storm", R"pb(
       request_id: "r7"
       tenant_id: "acme"
       workflow_id: "sync"
       item_id: "job-1"
       action { type: "retry_sync" }
       signals { key: "retry" value: 5 }
       signals { key: "timeout" value: 1 }
       evidence { key: "error_log" value: "upstream 503" }
     )pb"},
    {"approval-redeem", R"pb(
       request_id: "r8"
       tenant_id: "acme"
       workflow_id: "refunds"
       item_id: "order-7"
       action { type: "refund" amount: 400 currency: "USD" }
       approval { case_id: "case_01M871CXAT469PJ0G000000001" }
     )pb"},
};

}  // namespace

std::vector<std::pair<std::string, engine::Request>> SampleRequests() {
  std::vector<std::pair<std::string, engine::Request>> out;
  for (const Sample& sample : kSamples) {
    engine::Request request;
    if (!google::protobuf::TextFormat::ParseFromString(sample.text, &request)) {
      std::fprintf(stderr, "sample request %s does not parse\n", sample.name);
      std::abort();
    }
    const absl::Status valid = engine::ValidateRequest(request);
    if (!valid.ok()) {
      std::fprintf(stderr, "sample request %s is invalid: %s\n", sample.name,
                   valid.ToString().c_str());
      std::abort();
    }
    out.emplace_back(sample.name, std::move(request));
  }
  return out;
}

}  // namespace agate::fuzz
