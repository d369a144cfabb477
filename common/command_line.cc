#include "common/command_line.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/duration.h"

namespace agate {
namespace {

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

absl::StatusOr<CommandLine> CommandLine::Parse(const std::vector<std::string>& args,
                                               const FlagSpec& spec) {
  CommandLine cl;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      cl.positional_.insert(cl.positional_.end(), args.begin() + i + 1, args.end());
      break;
    }
    if (!absl::StartsWith(arg, "--") || arg.size() == 2) {
      cl.positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    if (Contains(spec.booleans, name)) {
      if (value.has_value()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
      }
      cl.booleans_.push_back(name);
      continue;
    }
    if (!Contains(spec.values, name)) {
      std::vector<std::string> known;
      for (const std::string& f : spec.values) known.push_back("--" + f);
      for (const std::string& f : spec.booleans) known.push_back("--" + f);
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, "; flags are ", absl::StrJoin(known, ", ")));
    }
    if (!value.has_value()) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      }
      value = args[++i];
    }
    cl.values_[name].push_back(*value);
  }
  return cl;
}

std::optional<std::string> CommandLine::Value(const std::string& flag) const {
  auto it = values_.find(flag);
  if (it == values_.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> CommandLine::All(const std::string& flag) const {
  auto it = values_.find(flag);
  return it == values_.end() ? std::vector<std::string>() : it->second;
}

bool CommandLine::Has(const std::string& flag) const { return Contains(booleans_, flag); }

absl::StatusOr<absl::Duration> CommandLine::Duration(const std::string& flag,
                                                     absl::Duration fallback) const {
  std::optional<std::string> v = Value(flag);
  if (!v.has_value()) return fallback;
  absl::StatusOr<absl::Duration> d = ParseDuration(*v);
  if (!d.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", d.status().message()));
  }
  return *d;
}

absl::StatusOr<int64_t> CommandLine::Int(const std::string& flag, int64_t fallback) const {
  std::optional<std::string> v = Value(flag);
  if (!v.has_value()) return fallback;
  int64_t n;
  if (!absl::SimpleAtoi(*v, &n) || n < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": expected a non-negative integer, got '", *v, "'"));
  }
  return n;
}

}  // namespace agate
