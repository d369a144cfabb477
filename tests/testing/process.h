// Test support: running agate-server and the agate CLI as child processes, with every wait
// bounded so that a broken binary fails the test instead of hanging it.
#ifndef AGATE_TESTS_TESTING_PROCESS_H_
#define AGATE_TESTS_TESTING_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace agate::testing {

struct RunResult {
  int exit_code = -1;  // -1: killed after the timeout
  std::string out;
  std::string err;
};

// Run runs argv with input on stdin and returns its exit code and output.
RunResult Run(const std::vector<std::string>& argv, const std::string& input = "",
              absl::Duration timeout = absl::Seconds(30));

// TempDir is a fresh directory under /tmp (/tmp/agate-e2e-XXXXXX), removed with everything in it
// when the TempDir goes out of scope.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// ServerProcess starts agate-server and waits for its "listening on" lines.
class ServerProcess {
 public:
  // Start runs binary with args; returns false (with log()) if it exited or did not listen in
  // time. Unless args name a --data-dir or a --store, the server gets a fresh data dir of its
  // own (removed by the destructor), so that tests can run in parallel.
  bool Start(const std::string& binary, const std::vector<std::string>& args, int listeners = 1,
             absl::Duration timeout = absl::Seconds(20));
  ~ServerProcess();

  // address returns the i-th "listening on" address ("127.0.0.1:41234", "unix:/tmp/x").
  const std::string& address(size_t i = 0) const { return addresses_[i]; }
  // http_address returns the "serving HTTP on" address (with --http-listen; Start waits for it),
  // "" without one.
  const std::string& http_address() const { return http_address_; }
  // Signal sends sig; Wait waits for the exit code (-1 on timeout, then SIGKILL).
  void Signal(int sig);
  int Wait(absl::Duration timeout = absl::Seconds(20));
  // log returns everything the server wrote to stderr so far.
  const std::string& log();
  pid_t pid() const { return pid_; }

 private:
  void Drain(absl::Duration timeout);
  pid_t pid_ = -1;
  int err_fd_ = -1;
  std::string log_;
  std::vector<std::string> addresses_;
  std::string http_address_;
  std::string own_data_dir_;
};

}  // namespace agate::testing

#endif  // AGATE_TESTS_TESTING_PROCESS_H_
