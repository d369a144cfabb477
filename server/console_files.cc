#include "server/console_files.h"

#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/bounded_file.h"
#include "common/sha256.h"

namespace agate::server {
namespace {

namespace fs = std::filesystem;

absl::Status Refused(const std::string& dir, absl::string_view why) {
  return absl::FailedPreconditionError(absl::StrCat("--console-dir ", dir, ": ", why));
}

// Hashed tells whether a file name carries esbuild's content hash: `name-XXXXXXXX.ext`, eight
// upper-case letters or digits.
bool Hashed(absl::string_view name) {
  const size_t dot = name.rfind('.');
  if (dot == absl::string_view::npos || dot < 9) return false;
  const absl::string_view hash = name.substr(dot - 8, 8);
  if (name[dot - 9] != '-') return false;
  for (char c : hash) {
    if (!absl::ascii_isdigit(c) && !absl::ascii_isupper(c)) return false;
  }
  return true;
}

}  // namespace

absl::string_view ContentTypeOf(absl::string_view name) {
  static constexpr struct {
    absl::string_view extension;
    absl::string_view type;
  } kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"},
      {".woff2", "font/woff2"},
  };
  for (const auto& t : kTypes) {
    if (absl::EndsWith(name, t.extension)) return t.type;
  }
  return "application/octet-stream";
}

absl::StatusOr<std::shared_ptr<const ConsoleFiles>> ConsoleFiles::Load(const std::string& dir,
                                                                       size_t max_files,
                                                                       size_t max_bytes) {
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    return Refused(dir, error ? error.message()
                              : "not a directory (build the console: cmake "
                                "--build build --target agate_console)");
  }
  std::shared_ptr<ConsoleFiles> files(new ConsoleFiles(dir));
  size_t total = 0;
  const fs::path root(dir);
  for (fs::recursive_directory_iterator it(root, error), end; !error && it != end;
       it.increment(error)) {
    const fs::path relative = it->path().lexically_relative(root);
    const std::string name = relative.generic_string();
    if (absl::StartsWith(relative.filename().string(), ".")) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    // Symbolic links are not followed: nothing outside dir is served.
    if (it->is_symlink() || !it->is_regular_file()) continue;
    if (files->files_.size() == max_files) {
      return Refused(dir, absl::StrCat("more than ", max_files, " files"));
    }
    absl::StatusOr<std::string> content = ReadBoundedFile(it->path().string(), max_bytes - total);
    if (!content.ok()) return Refused(dir, absl::StrCat(name, ": ", content.status().message()));
    total += content->size();
    File file;
    file.etag = "\"";
    ThreadSha256().HexAppend(*content, &file.etag);
    file.etag.resize(17);
    file.etag.push_back('"');
    file.content = *std::move(content);
    file.content_type = std::string(ContentTypeOf(name));
    file.cache_control =
        Hashed(relative.filename().string()) ? "public, max-age=31536000, immutable" : "no-cache";
    files->files_.emplace(name, std::move(file));
  }
  if (error) return Refused(dir, error.message());
  if (!files->files_.contains("index.html")) return Refused(dir, "no index.html in it");
  return files;
}

const ConsoleFiles::File* ConsoleFiles::Find(absl::string_view path) const {
  if (!absl::ConsumePrefix(&path, "/")) return nullptr;
  if (path.empty()) path = "index.html";
  auto it = files_.find(path);
  return it == files_.end() ? nullptr : &it->second;
}

}  // namespace agate::server
