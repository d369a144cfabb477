// CommandLine: a small parser for `--flag value`, `--flag=value`, repeatable flags, boolean
// flags and positional arguments, shared by agate-server and the agate CLI.
//
// absl::flags does not fit: its flags are global, not repeatable, and know no subcommands.
// Errors are INVALID_ARGUMENT naming the flag ("unknown flag --lisen; flags are --listen, ...").
//
// Example:
//   absl::StatusOr<CommandLine> cl = CommandLine::Parse(args, {.values = {"matrix", "listen"},
//                                                               .booleans = {"help"}});
//   std::vector<std::string> listen = cl->All("listen");
#ifndef AGATE_COMMON_COMMAND_LINE_H_
#define AGATE_COMMON_COMMAND_LINE_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace agate {

struct FlagSpec {
  std::vector<std::string> values;    // flags that take a value (names without "--")
  std::vector<std::string> booleans;  // flags that take none
};

class CommandLine {
 public:
  // Parse reads args (without the program name). "--" ends the flags.
  static absl::StatusOr<CommandLine> Parse(const std::vector<std::string>& args,
                                           const FlagSpec& spec);

  // Value returns the last value of flag, if given.
  std::optional<std::string> Value(const std::string& flag) const;
  // All returns every value of a repeatable flag, in order.
  std::vector<std::string> All(const std::string& flag) const;
  // Has returns true if the boolean flag was given.
  bool Has(const std::string& flag) const;
  const std::vector<std::string>& positional() const { return positional_; }

  // Duration parses flag's value as an agate duration ("200ms", "10s"), or returns fallback.
  absl::StatusOr<absl::Duration> Duration(const std::string& flag, absl::Duration fallback) const;
  // Int parses flag's value as a non-negative integer, or returns fallback.
  absl::StatusOr<int64_t> Int(const std::string& flag, int64_t fallback) const;

 private:
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> booleans_;
  std::vector<std::string> positional_;
};

}  // namespace agate

#endif  // AGATE_COMMON_COMMAND_LINE_H_
