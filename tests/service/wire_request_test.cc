// WireRequest::Scan reads the ids a retry needs as the parser would, or declines.
#include "service/wire_request.h"

#include <random>
#include <string>

#include "common/sha256.h"
#include "gtest/gtest.h"
#include "tests/testing/fixtures.h"

namespace agate::service {
namespace {

engine::Request Full() {
  engine::Request r = testing::MakeRequest("req-1", testing::kHold);
  r.set_agent_id("support-bot");
  (*r.mutable_signals())["retry"] = 3;
  r.mutable_model()->set_confidence(0.5);
  return r;
}

TEST(WireRequestTest, ReadsTheIdsAndDigestsTheBytes) {
  const std::string bytes = Full().SerializeAsString();
  WireRequest wire;
  ASSERT_TRUE(WireRequest::Scan(bytes, &wire));
  EXPECT_EQ(wire.request_id, "req-1");
  EXPECT_EQ(wire.tenant_id, Full().tenant_id());
  EXPECT_EQ(wire.agent_id, "support-bot");
  EXPECT_EQ(wire.bytes, bytes);
  EXPECT_EQ(wire.digest, ThreadSha256().Digest(bytes));
  // An empty message is a request with no ids.
  ASSERT_TRUE(WireRequest::Scan("", &wire));
  EXPECT_TRUE(wire.request_id.empty());
}

TEST(WireRequestTest, ARepeatedIdIsTheLastOneAsTheParserKeeps) {
  engine::Request a, b;
  a.set_request_id("first");
  b.set_request_id("second");
  b.set_tenant_id("t");
  const std::string bytes = a.SerializeAsString() + b.SerializeAsString();
  engine::Request parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  WireRequest wire;
  ASSERT_TRUE(WireRequest::Scan(bytes, &wire));
  EXPECT_EQ(wire.request_id, parsed.request_id());
  EXPECT_EQ(wire.tenant_id, parsed.tenant_id());
}

TEST(WireRequestTest, DeclinesWhatIsNotAWellFormedMessage) {
  const std::string good = Full().SerializeAsString();
  WireRequest wire;
  EXPECT_FALSE(WireRequest::Scan(good.substr(0, good.size() - 1), &wire));  // truncated
  EXPECT_FALSE(WireRequest::Scan(std::string("\x0a\x05"
                                             "ab",
                                             4),
                                 &wire));                              // length past end
  EXPECT_FALSE(WireRequest::Scan(std::string("\x0b\x0c", 2), &wire));  // a group
  EXPECT_FALSE(WireRequest::Scan(std::string("\x00\x01", 2), &wire));  // field 0
  EXPECT_FALSE(WireRequest::Scan(std::string("\x0f", 1), &wire));      // wire type 7
  EXPECT_FALSE(WireRequest::Scan(std::string("\x08\xff", 2), &wire));  // varint cut short
  EXPECT_FALSE(WireRequest::Scan(std::string(11, '\xff'), &wire));     // varint too long
}

// Whatever bytes both accept, Scan and the parser agree on the ids.
TEST(WireRequestTest, AgreesWithTheParserOnMutatedRequests) {
  const std::string good = Full().SerializeAsString();
  std::mt19937 rng(42);
  int both = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = good;
    for (int m = 0; m < 1 + static_cast<int>(rng() % 3); ++m) {
      bytes[rng() % bytes.size()] = static_cast<char>(rng());
    }
    engine::Request parsed;
    WireRequest wire;
    if (!WireRequest::Scan(bytes, &wire) || !parsed.ParseFromString(bytes)) continue;
    ++both;
    EXPECT_EQ(wire.request_id, parsed.request_id());
    EXPECT_EQ(wire.tenant_id, parsed.tenant_id());
    EXPECT_EQ(wire.agent_id, parsed.agent_id());
  }
  EXPECT_GT(both, 1000);  // the property was exercised
}

}  // namespace
}  // namespace agate::service
