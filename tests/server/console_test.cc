// The operator console's side of the server: ConsoleFiles (what it loads, what a path can reach,
// content types and caching), HttpApi serving it at /, --console-dir, and GET /v1/whoami (what a
// caller may do, for the console's buttons).
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/api.h"
#include "server/console_files.h"
#include "server/http_api.h"
#include "server/identity.h"
#include "server/options.h"
#include "service/service.h"
#include "tests/testing/fixtures.h"
#include "tests/testing/pki.h"
#include "tests/testing/process.h"
#include "tests/testing/status_matchers.h"

namespace agate::server {
namespace {

using ::agate::testing::StatusIs;
using ::testing::HasSubstr;

// A built console: index.html, a hashed bundle, a file in a folder, a dot file.
class ConsoleFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_.path() + "/console/assets");
    std::filesystem::create_directories(dir_.path() + "/console/.git");
    Write("index.html", "<!doctype html><title>agate</title>");
    Write("app-AB12CD34.js", "console.log(1)");
    Write("assets/logo.svg", "<svg/>");
    Write(".secret", "no");
    Write(".git/config", "no");
    testing::WriteFileOrDie(dir_.path() + "/outside.txt", "root:x:0:0");
  }
  void Write(const std::string& name, const std::string& text) {
    testing::WriteFileOrDie(absl::StrCat(dir_.path(), "/console/", name), text);
  }
  std::string console() const { return dir_.path() + "/console"; }

  testing::TempDir dir_;
};

TEST_F(ConsoleFilesTest, ServesTheFilesItLoadedWithTheirTypesAndCaching) {
  absl::StatusOr<std::shared_ptr<const ConsoleFiles>> files = ConsoleFiles::Load(console());
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ((*files)->size(), 3u) << "dot files and folders are skipped";
  const ConsoleFiles::File* index = (*files)->Find("/");
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(index, (*files)->Find("/index.html"));
  EXPECT_EQ(index->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(index->cache_control, "no-cache");
  EXPECT_THAT(index->etag, ::testing::MatchesRegex("\"[0-9a-f]{16}\""));
  const ConsoleFiles::File* js = (*files)->Find("/app-AB12CD34.js");
  ASSERT_NE(js, nullptr);
  EXPECT_EQ(js->content, "console.log(1)");
  EXPECT_EQ(js->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(js->cache_control, "public, max-age=31536000, immutable");
  const ConsoleFiles::File* svg = (*files)->Find("/assets/logo.svg");
  ASSERT_NE(svg, nullptr);
  EXPECT_EQ(svg->content_type, "image/svg+xml");
  EXPECT_EQ(svg->cache_control, "no-cache") << "no hash in its name";
}

TEST_F(ConsoleFilesTest, NoPathReachesOutsideTheDirectory) {
  std::filesystem::create_symlink(dir_.path() + "/outside.txt", console() + "/link.txt");
  std::shared_ptr<const ConsoleFiles> files = *ConsoleFiles::Load(console());
  for (const char* path :
       {"/../outside.txt", "/assets/../../outside.txt", "/assets/../index.html", "//index.html",
        "/./index.html", "index.html", "", "/%2e%2e/outside.txt", "/..%2foutside.txt", "/.secret",
        "/.git/config", "/assets", "/assets/", "/link.txt"}) {
    EXPECT_EQ(files->Find(path), nullptr) << path;
  }
  EXPECT_EQ(files->Find(absl::string_view("/index.html\0x", 13)), nullptr);
}

TEST_F(ConsoleFilesTest, ADirectoryThatCannotBeServedIsAClearError) {
  EXPECT_THAT(ConsoleFiles::Load(dir_.path() + "/missing"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr(absl::StrCat("--console-dir ", dir_.path(), "/missing: "))));
  EXPECT_THAT(ConsoleFiles::Load(dir_.path() + "/outside.txt"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not a directory")));
  EXPECT_THAT(ConsoleFiles::Load(console() + "/assets"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no index.html in it")));
  EXPECT_THAT(ConsoleFiles::Load(console(), /*max_files=*/2),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("more than 2 files")));
  EXPECT_THAT(ConsoleFiles::Load(console(), 256, /*max_bytes=*/20),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("larger than")));
}

TEST(ContentTypeTest, KnowsTheBundlesTypesAndDefaultsToOctetStream) {
  EXPECT_EQ(ContentTypeOf("a.css"), "text/css; charset=utf-8");
  EXPECT_EQ(ContentTypeOf("a.js.map"), "application/json");
  EXPECT_EQ(ContentTypeOf("a.png"), "image/png");
  EXPECT_EQ(ContentTypeOf("Makefile"), "application/octet-stream");
}

TEST_F(ConsoleFilesTest, HttpApiServesTheConsoleAtTheRootWithSafeHeaders) {
  std::unique_ptr<service::Service> service = *service::Service::Create(testing::BundledMatrix());
  std::unique_ptr<Identity> identity = *Identity::Create("");
  Api api(*service, *identity);
  HttpApi http(api, {.console = *ConsoleFiles::Load(console())});
  const HttpAnswer index = http.Handle({.method = "GET", .path = "/"});
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(index.body, "<!doctype html><title>agate</title>");
  std::string etag;
  bool csp = false;
  for (const auto& [name, value] : index.headers) {
    if (name == "ETag") etag = value;
    if (name == "Content-Security-Policy") csp = absl::StrContains(value, "default-src 'self'");
  }
  EXPECT_TRUE(csp);
  ASSERT_FALSE(etag.empty());
  HttpRequest again{.method = "GET", .path = "/"};
  again.headers.emplace_back("if-none-match", etag);
  const HttpAnswer cached = http.Handle(again);
  EXPECT_EQ(cached.status, 304);
  EXPECT_EQ(cached.body, "");
  EXPECT_EQ(http.Handle({.method = "HEAD", .path = "/app-AB12CD34.js"}).status, 200);
  const HttpAnswer post = http.Handle({.method = "POST", .path = "/"});
  EXPECT_EQ(post.status, 405);
  const HttpAnswer missing = http.Handle({.method = "GET", .path = "/../outside.txt"});
  EXPECT_EQ(missing.status, 404);
  EXPECT_THAT(missing.body, HasSubstr("no such path: /../outside.txt"));
  EXPECT_EQ(http.Handle({.method = "GET", .path = "/v1/index.html"}).status, 404)
      << "the API's paths are never the console's";

  HttpApi without(api, {});
  const HttpAnswer none = without.Handle({.method = "GET", .path = "/"});
  EXPECT_EQ(none.status, 404);
  EXPECT_THAT(none.body, HasSubstr("without one (--console-dir)"));
}

TEST(OptionsTest, ParsesTheConsoleDirectory) {
  absl::StatusOr<ServerOptions> o = ParseServerOptions(
      {"--matrix", "m.yaml", "--http-listen", "127.0.0.1:0", "--console-dir", "/srv/console"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->console_dir, "/srv/console");
  EXPECT_FALSE(ParseServerOptions({"--matrix", "m.yaml"})->console_dir.has_value());
  EXPECT_THAT(ParseServerOptions({"--matrix", "m.yaml", "--console-dir", "/srv/console"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--console-dir: only means something with --http-listen")));
  EXPECT_THAT(
      ParseServerOptions(
          {"--matrix", "m.yaml", "--http-listen", "127.0.0.1:0", "--console-dir", ""}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--console-dir: a directory")));
}

TEST(WhoAmIDevelopmentTest, SaysDevelopmentModeWhereAnyoneIsWhoTheyClaim) {
  std::unique_ptr<service::Service> service = *service::Service::Create(testing::BundledMatrix());
  std::unique_ptr<Identity> identity = *Identity::Create("");
  Api api(*service, *identity);
  HttpApi http(api, {});
  const HttpAnswer me = http.Handle({.method = "GET", .path = "/v1/whoami"});
  EXPECT_EQ(me.status, 200);
  EXPECT_THAT(me.body, HasSubstr(R"("kind":"PRINCIPAL_KIND_UNVERIFIED")"));
  EXPECT_THAT(me.body, HasSubstr(R"("development":true,"admin":true,"groups":{}})"));
}

}  // namespace
}  // namespace agate::server
