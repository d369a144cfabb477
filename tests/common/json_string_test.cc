#include "common/json_string.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>

#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace agate {
namespace {

TEST(JsonStringTest, EscapesQuotesBackslashesAndControlCharacters) {
  struct Case {
    std::string name, input, want;
  };
  const Case cases[] = {
      {"plain", "plain", "plain"},
      {"quote and backslash", "a\"b\\c", "a\\\"b\\\\c"},
      {"short forms", "\b\f\n\r\t", "\\b\\f\\n\\r\\t"},
      {"other controls", std::string("\x00\x01\x1f", 3), "\\u0000\\u0001\\u001f"},
      {"del passes", "\x7f", "\x7f"},
      {"slash passes", "a/b", "a/b"},
  };
  for (const Case& c : cases) EXPECT_EQ(JsonEscape(c.input), c.want) << c.name;
}

TEST(JsonStringTest, PassesWellFormedUtf8Unchanged) {
  for (const std::string s : {"h\xc3\xa9llo", "\xe2\x82\xac", "\xef\xbf\xbd", "\xf0\x9f\x98\x80",
                              "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf", "\xee\x80\x80"}) {
    EXPECT_EQ(JsonEscape(s), s);
  }
}

TEST(JsonStringTest, ReplacesEachByteOfInvalidUtf8) {
  struct Case {
    std::string name, input, want;
  };
  const Case cases[] = {
      {"stray continuation", "a\x80z", "a\\ufffdz"},
      {"0xff", "\xff", "\\ufffd"},
      {"overlong 2 bytes", "\xc0\xaf", "\\ufffd\\ufffd"},
      {"overlong 3 bytes", "\xe0\x80\xaf", "\\ufffd\\ufffd\\ufffd"},
      {"surrogate", "\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd"},
      {"above U+10FFFF", "\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd"},
      {"truncated at end", "ok\xe2\x82", "ok\\ufffd\\ufffd"},
      {"truncated before ascii", "\xe2\x82z", "\\ufffd\\ufffdz"},
      {"lead then valid", "\xc3\xc3\xa9", "\\ufffd\xc3\xa9"},
  };
  for (const Case& c : cases) EXPECT_EQ(JsonEscape(c.input), c.want) << c.name;
}

TEST(JsonStringTest, AppendJsonStringQuotes) {
  std::string out = "x=";
  AppendJsonString("a\"b", &out);
  EXPECT_EQ(out, "x=\"a\\\"b\"");
}

// Whatever the bytes, the result parses as a JSON string (protobuf's parser checks UTF-8 too).
TEST(JsonStringTest, RandomBytesAlwaysGiveValidJson) {
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string s(rng() % 24, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    std::string json;
    AppendJsonString(s, &json);
    google::protobuf::Value v;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &v).ok()) << json;
    if (std::all_of(s.begin(), s.end(), [](char c) { return static_cast<uint8_t>(c) < 0x80; })) {
      EXPECT_EQ(v.string_value(), s);
    }
  }
}

}  // namespace
}  // namespace agate
