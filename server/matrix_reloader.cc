#include "server/matrix_reloader.h"

#include <pthread.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <utility>
#include <vector>

#include "engine/diagnostic.h"
#include "engine/matrix.h"
#include "spdlog/spdlog.h"

namespace agate::server {

MatrixReloader::Target MatrixReloader::LiveMatrix(service::Service& service) {
  return Target{
      .what = "matrix",
      .get = [&service] { return service.matrix(); },
      .set =
          [&service](std::shared_ptr<const engine::Matrix> m) { service.SetMatrix(std::move(m)); },
      .reloads = &service.counters().matrix_reloads,
      .failures = &service.counters().matrix_reload_failures};
}

MatrixReloader::Target MatrixReloader::ShadowMatrix(service::Service& service) {
  return Target{.what = "shadow matrix",
                .get = [&service] { return service.shadow()->candidate(); },
                .set =
                    [&service](std::shared_ptr<const engine::Matrix> m) {
                      service.shadow()->SetCandidate(std::move(m));
                    },
                .reloads = &service.counters().shadow_matrix_reloads,
                .failures = &service.counters().shadow_matrix_reload_failures};
}

MatrixReloader::MatrixReloader(std::string path, Target target)
    : path_(std::move(path)), target_(std::move(target)) {
  absl::MutexLock lock(&mu_);
  loaded_ = polled_ = StatFile(path_);
}

MatrixReloader::~MatrixReloader() { Stop(); }

absl::Status MatrixReloader::Reload() {
  absl::MutexLock lock(&mu_);
  return ReloadLocked(StatFile(path_));
}

std::optional<absl::Status> MatrixReloader::Poll() {
  absl::MutexLock lock(&mu_);
  const FileStamp now = StatFile(path_);
  const bool settled = now == polled_;
  polled_ = now;
  if (now == loaded_ || !settled) return std::nullopt;
  return ReloadLocked(now);
}

absl::Status MatrixReloader::ReloadLocked(const FileStamp& stamp) {
  // Stamped before reading: if the file changes while it is read, the next polls see a newer
  // stamp and load it again.
  loaded_ = stamp;
  const std::shared_ptr<const engine::Matrix> old = target_.get();
  std::vector<engine::Diagnostic> diagnostics;
  absl::StatusOr<std::shared_ptr<const engine::Matrix>> matrix =
      engine::LoadMatrixFile(path_, &diagnostics);
  if (!matrix.ok()) {
    int errors = 0;
    for (const engine::Diagnostic& d : diagnostics) {
      if (d.severity != engine::Severity::kError) continue;
      spdlog::error("{}", d.ToString());
      ++errors;
    }
    if (errors == 0) spdlog::error("{}", std::string(matrix.status().message()));
    spdlog::error("{} reload failed: {} has {} error{}; still {} version {}", target_.what, path_,
                  std::max(errors, 1), errors > 1 ? "s" : "",
                  target_.what == "matrix" ? "serving" : "comparing", old->version());
    service::Counters::Add(*target_.failures);
    return matrix.status();
  }
  for (const engine::Diagnostic& d : diagnostics) spdlog::warn("{}", d.ToString());
  target_.set(*matrix);
  service::Counters::Add(*target_.reloads);
  spdlog::info("reloaded {} {}: version {} -> {} ({} lanes, {} triggers)", target_.what, path_,
               old->version(), (*matrix)->version(), (*matrix)->lanes().size(),
               (*matrix)->triggers().size());
  return absl::OkStatus();
}

void MatrixReloader::Start(absl::Duration interval) {
  watcher_ = std::thread([this, interval] {
    pthread_setname_np(pthread_self(), "agate-watch");
    while (!stop_.WaitForNotificationWithTimeout(interval)) Poll();
  });
}

void MatrixReloader::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (watcher_.joinable()) watcher_.join();
}

}  // namespace agate::server
