#!/usr/bin/env bash
# Runs every test of colloquy — the README's test command, and what .ci/run
# runs after the formatting and lint checks:
#   1. the Rust tests of every crate (unit, adapters, the whole server over
#      real HTTP against a fake upstream, OpenAI's Python SDK against it, the
#      real binary killed mid-reply);
#   2. the API fuzzed against its own OpenAPI document (schemathesis);
#   3. the web chat page in headless Chromium against the real binary;
#   4. a few seconds of every benchmark scenario, so the benchmark cannot rot
#      (it fails on errors or altered replies, never on latency).
# Steps 1 to 3 install what they need (Python venvs under target/, Debian's
# chromium and npm's playwright-core) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test --workspace"
cargo test --workspace

# Every binary, once: the steps below build with this same command, which is
# then a no-op (building fewer packages would unify features differently and
# compile the dependencies again).
echo "== cargo build --workspace --bins"
cargo build --workspace --bins

echo "== schemathesis"
scripts/schemathesis.sh

echo "== browser test"
scripts/browser-test.sh

# Debug build (from above); the real figures come from a release build
# (docs/BENCHMARKS.md).
echo "== benchmark smoke"
target/debug/colloquy-bench --smoke
