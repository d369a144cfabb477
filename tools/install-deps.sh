#!/usr/bin/env bash
# Installs agate's build and test dependencies from Debian 12 packages (run as root).
# The README's two commands and CI (.ci/run) call this script, so the list lives here only. It
# ends with tools/install-npm.sh (the Node packages, from their lock files). systemd and
# python3-yaml are for tests/deploy/deploy_test.py (systemd-analyze verify on the unit, the
# Kubernetes manifest parsed); zlib1g-dev for the HTTP module's gzip; chromium for the console's
# browser test; postgresql-15 for the shared store's tests (tests/testing/postgres.sh runs a
# throwaway server).
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libspdlog-dev libyaml-cpp-dev libre2-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcpp-httplib-dev
  nghttp2-client python3-grpcio python3-protobuf python3-grpc-tools python3-prometheus-client
  libsqlite3-dev libpq-dev postgresql-15
  libssl-dev zlib1g-dev
  clang libclang-rt-14-dev llvm
  chromium
  systemd python3-yaml
)
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "install-deps: ${#packages[@]} packages present"
# Node (20 or newer) runs the TypeScript SDK, the MCP gate and the LangGraph example; the machines
# agate is built on have it. Debian's own nodejs is only installed where there is none.
if ! command -v node >/dev/null; then
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
"$(dirname "$0")/install-npm.sh"
