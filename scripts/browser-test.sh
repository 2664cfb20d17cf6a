#!/usr/bin/env bash
# The web chat page in a real browser: Debian's Chromium, driven by
# playwright-core (tests/browser/), against the real colloquy binary with the
# built-in offline model: first a server that authenticates nobody, then one
# with API keys (COLLOQUY_AUTH=keys, its key made with `colloquy keys create`),
# where the page must ask for the key, keep it for the tab and open its event
# streams with stream tokens, then one where assistants are made in the page
# and answer, each in turn, in the order picked, then one where a conversation
# branches (a reply regenerated, a question edited, versions switched) and
# chats are searched, exported and imported. Installs what it needs when it is missing, builds
# the binary, runs the test; exits non-zero when a step fails.
#
#   scripts/browser-test.sh               # the test; screenshots in tests/browser/output/
#   scripts/browser-test.sh --screenshot  # the same, and refresh docs/screenshot.png
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

screenshot=""
case "${1:-}" in
  "") ;;
  --screenshot) screenshot="$PWD/docs/screenshot.png" ;;
  *) echo "usage: $0 [--screenshot]" >&2; exit 2 ;;
esac

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

if [ ! -x /usr/bin/chromium ]; then
  echo "== installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq chromium </dev/null
fi

if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "the browser test needs Node.js 20 or newer (playwright-core does)" >&2
  exit 1
fi

wanted=$(node -p 'require("./tests/browser/package-lock.json").packages["node_modules/playwright-core"].version')
installed=$(node -p 'try { require("./tests/browser/node_modules/playwright-core/package.json").version } catch { "" }')
if [ "$wanted" != "$installed" ]; then
  echo "== npm ci (playwright-core $wanted)"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error </dev/null)
fi

echo "== building the colloquy binary"
cargo build --workspace --bins

echo "== the web page in Chromium"
cd tests/browser
SCREENSHOT="${screenshot:-$PWD/output/screenshot.png}" node --test --test-reporter=spec chat.test.mjs </dev/null
echo "== browser test passed in $(($(date +%s) - started)) s"
