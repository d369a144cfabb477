#!/usr/bin/env bash
# Installs the npm dependencies of agate's Node packages exactly as their package-lock.json files
# pin them (npm ci): the TypeScript SDK, the MCP gate, the LangGraph.js example and the operator
# console (Preact, esbuild, and puppeteer-core for its browser test). Needs Node 20+
# and npm; the README's install step and CI call it after tools/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install-npm: node and npm are needed (Node 20 or newer)" >&2
  exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if (( major < 20 )); then
  echo "install-npm: Node $(node --version) is too old; agate's Node packages need Node 20 or newer" >&2
  exit 1
fi
# sdk/node first: the other two link to it (file:../../sdk/node).
packages=(sdk/node integrations/mcp examples/langgraph console)
for dir in "${packages[@]}"; do
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
done
echo "install-npm: ${#packages[@]} Node packages installed (${packages[*]})"
