#include "tests/testing/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace agate::testing {
namespace {

pid_t Spawn(const std::vector<std::string>& argv, int in, int out, int err) {
  const pid_t pid = fork();
  if (pid == 0) {
    // Die with the test, even when it aborts (a sanitizer report, a crash) before its
    // destructors run; unblock what a parent may have blocked. Spawn runs on the test's main
    // thread, whose exit is what PR_SET_PDEATHSIG watches.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

int WaitPid(pid_t pid, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0) return -1;
    if (absl::Now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
}

}  // namespace

RunResult Run(const std::vector<std::string>& argv, const std::string& input,
              absl::Duration timeout) {
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    return {};
  }
  const pid_t pid = Spawn(argv, in[0], out[1], err[1]);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  RunResult result;
  size_t written = 0;
  if (input.empty()) {
    close(in[1]);
    in[1] = -1;
  }
  const absl::Time deadline = absl::Now() + timeout;
  bool out_open = true, err_open = true;
  while ((out_open || err_open) && absl::Now() < deadline) {
    pollfd fds[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {in[1], POLLOUT, 0}};
    poll(fds, in[1] >= 0 ? 3 : 2, 50);
    char buf[65536];
    for (int i = 0; i < 2; ++i) {
      if (!(i == 0 ? out_open : err_open)) continue;
      if (fds[i].revents & (POLLIN | POLLHUP)) {
        const ssize_t n = read(fds[i].fd, buf, sizeof(buf));
        if (n > 0) {
          (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(n));
        } else {
          (i == 0 ? out_open : err_open) = false;
        }
      }
    }
    if (in[1] >= 0 && (fds[2].revents & POLLOUT)) {
      const ssize_t n = write(in[1], input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      if (written == input.size()) {
        close(in[1]);
        in[1] = -1;
      }
    }
  }
  if (in[1] >= 0) close(in[1]);
  close(out[0]);
  close(err[0]);
  result.exit_code = WaitPid(pid, std::max(deadline - absl::Now(), absl::Seconds(1)));
  return result;
}

bool ServerProcess::Start(const std::string& binary, const std::vector<std::string>& args,
                          int listeners, absl::Duration timeout) {
  int err[2];
  if (pipe2(err, O_CLOEXEC) != 0) return false;
  const int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  std::vector<std::string> argv = {binary};
  argv.insert(argv.end(), args.begin(), args.end());
  if (std::find(args.begin(), args.end(), "--data-dir") == args.end() &&
      std::find(args.begin(), args.end(), "--store") == args.end()) {
    // Tests run in parallel: each server gets its own data dir unless the test chose one.
    char dir[] = "/tmp/agate-e2e-data-XXXXXX";
    if (mkdtemp(dir) != nullptr) {
      own_data_dir_ = dir;
      argv.insert(argv.end(), {"--data-dir", own_data_dir_});
    }
  }
  pid_ = Spawn(argv, null_fd, null_fd, err[1]);
  close(null_fd);
  close(err[1]);
  err_fd_ = err[0];
  const bool http = std::find(args.begin(), args.end(), "--http-listen") != args.end();
  const absl::Time deadline = absl::Now() + timeout;
  while ((static_cast<int>(addresses_.size()) < listeners || (http && http_address_.empty())) &&
         absl::Now() < deadline) {
    Drain(absl::Milliseconds(50));
    addresses_.clear();
    for (absl::string_view line : absl::StrSplit(log_, '\n')) {
      for (absl::string_view marker : {"listening on ", "serving HTTP on "}) {
        const size_t at = line.find(marker);
        if (at == absl::string_view::npos) continue;
        // "listening on ADDR" or "listening on ADDR (TLS...)", in a text or a JSON line.
        absl::string_view address = line.substr(at + marker.size());
        address = address.substr(0, address.find_first_of(" \""));
        if (marker == "listening on ") {
          addresses_.emplace_back(address);
        } else {
          http_address_ = std::string(address);
        }
      }
    }
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      Drain(absl::Milliseconds(50));
      return false;
    }
  }
  return static_cast<int>(addresses_.size()) >= listeners && (!http || !http_address_.empty());
}

void ServerProcess::Drain(absl::Duration timeout) {
  if (err_fd_ < 0) return;
  pollfd fd = {err_fd_, POLLIN, 0};
  if (poll(&fd, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) <= 0) return;
  char buf[65536];
  const ssize_t n = read(err_fd_, buf, sizeof(buf));
  if (n > 0) log_.append(buf, static_cast<size_t>(n));
}

const std::string& ServerProcess::log() {
  Drain(absl::Milliseconds(20));
  return log_;
}

void ServerProcess::Signal(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

int ServerProcess::Wait(absl::Duration timeout) {
  if (pid_ <= 0) return -1;
  const int code = WaitPid(pid_, timeout);
  pid_ = -1;
  Drain(absl::Milliseconds(20));
  return code;
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    if (WaitPid(pid_, absl::Seconds(15)) < 0) kill(pid_, SIGKILL);
  }
  if (err_fd_ >= 0) close(err_fd_);
  if (!own_data_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(own_data_dir_, ignored);
  }
}

TempDir::TempDir() {
  char dir[] = "/tmp/agate-e2e-XXXXXX";
  if (mkdtemp(dir) == nullptr) {
    std::perror("mkdtemp /tmp/agate-e2e-XXXXXX");
    std::abort();
  }
  path_ = dir;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace agate::testing
