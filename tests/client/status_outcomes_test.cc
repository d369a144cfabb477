// The fail-closed table that every agate client shares, sdk/status_outcomes.json, is the C++
// client's: Client::IsNoAnswer is true exactly for the codes the file calls "no_answer", false
// for the "error" codes, and OK is the one "answer". The Python SDK (sdk/python) and the Node SDK
// test themselves against the same file.
//
// Registered in tests/CMakeLists.txt with:
//   agate_test(status_outcomes_test SOURCES client/status_outcomes_test.cc LIBS agate_client)
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "gtest/gtest.h"

namespace agate::client {
namespace {

constexpr char kTablePath[] = AGATE_SOURCE_DIR "/sdk/status_outcomes.json";
constexpr int kStatusCodes = 17;  // OK (0) .. UNAUTHENTICATED (16)

// ParseTable reads the file's whole grammar: one flat object of "NAME": "outcome" pairs, no
// escapes, no nesting, no duplicate names.
absl::StatusOr<std::map<std::string, std::string>> ParseTable(const std::string& text) {
  size_t i = 0;
  auto skip_space = [&] {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  };
  auto fail = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(kTablePath, ": offset ", i, ": ", what));
  };
  auto expect = [&](char c) {
    skip_space();
    if (i >= text.size() || text[i] != c) return false;
    ++i;
    return true;
  };
  auto string = [&](std::string* out) {
    if (!expect('"')) return false;
    const size_t end = text.find('"', i);
    if (end == std::string::npos || text.find('\\', i) < end) return false;
    *out = text.substr(i, end - i);
    i = end + 1;
    return true;
  };
  std::map<std::string, std::string> table;
  if (!expect('{')) return fail("expected {");
  do {
    std::string name, outcome;
    if (!string(&name)) return fail("expected a status code name in quotes");
    if (!expect(':')) return fail("expected :");
    if (!string(&outcome)) return fail("expected an outcome in quotes");
    if (!table.emplace(name, outcome).second) return fail(absl::StrCat(name, " appears twice"));
  } while (expect(','));
  if (!expect('}')) return fail("expected , or }");
  skip_space();
  if (i != text.size()) return fail("text after the object");
  return table;
}

std::map<std::string, std::string> ReadTable() {
  std::ifstream in(kTablePath);
  EXPECT_TRUE(in.good()) << "cannot read " << kTablePath;
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<std::map<std::string, std::string>> table = ParseTable(text.str());
  EXPECT_TRUE(table.ok()) << table.status();
  return table.ok() ? *table : std::map<std::string, std::string>{};
}

std::string ClientOutcome(absl::StatusCode code) {
  if (code == absl::StatusCode::kOk) return "answer";
  return Client::IsNoAnswer(absl::Status(code, "test")) ? "no_answer" : "error";
}

TEST(StatusOutcomesTest, FileNamesEveryStatusCodeOnce) {
  const std::map<std::string, std::string> table = ReadTable();
  EXPECT_EQ(table.size(), static_cast<size_t>(kStatusCodes));
  for (int i = 0; i < kStatusCodes; ++i) {
    const std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(i));
    EXPECT_EQ(table.count(name), 1u) << kTablePath << " lacks " << name;
  }
}

TEST(StatusOutcomesTest, IsNoAnswerMatchesTheFileForEveryCode) {
  const std::map<std::string, std::string> table = ReadTable();
  for (int i = 0; i < kStatusCodes; ++i) {
    const auto code = static_cast<absl::StatusCode>(i);
    const std::string name = absl::StatusCodeToString(code);
    auto it = table.find(name);
    ASSERT_NE(it, table.end()) << name;
    EXPECT_EQ(ClientOutcome(code), it->second) << name;
  }
  EXPECT_FALSE(Client::IsNoAnswer(absl::OkStatus()));
}

TEST(StatusOutcomesTest, ParserRejectsWhatTheFormatIsNot) {
  EXPECT_TRUE(ParseTable(R"({"OK": "answer", "CANCELLED": "no_answer"})").ok());
  for (const char* text :
       {"", "[]", R"({"OK": "answer",})", R"({"OK": "answer"} x)",
        R"({"OK": "answer", "OK": "error"})", R"({"OK": answer})", R"({"O\"K": "answer"})"}) {
    EXPECT_FALSE(ParseTable(text).ok()) << text;
  }
}

}  // namespace
}  // namespace agate::client
