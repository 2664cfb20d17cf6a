#!/usr/bin/env bash
# Fuzzes the API against its own OpenAPI document with schemathesis: the
# debug binary serves on a free port with the offline model and a temporary
# database; every generated request must get no 5xx, a documented status, a
# documented content type, and a body that matches its documented schema.
#
#   scripts/schemathesis.sh            # what CI runs
#   MAX_EXAMPLES=200 scripts/schemathesis.sh
#   CHECKS=all scripts/schemathesis.sh
#
# Event streams (`…/events`, `/api/chat/receive/…`) stay open as long as their
# session exists: schemathesis reads each for the request timeout (2 s) and
# checks every event it got against the `ServerSentEvent` schema. The stateful
# phase (chains of calls through links) is left out to keep the run near two
# minutes; `--checks all` also fails on a false positive of schemathesis's
# negative data for the send body's "`content` or `message`" (an `anyOf`).
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION="4.32.5"
VENV="target/schemathesis-venv"
MAX_EXAMPLES="${MAX_EXAMPLES:-40}"
CHECKS="${CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance}"

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    echo "== installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

cargo build --quiet --workspace --bins

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
env -u OPENAI_API_KEY -u OPENAI_BASE_URL \
    COLLOQUY_LLM=offline DATABASE_URL="$work/colloquy.db" COLLOQUY_SHUTDOWN_GRACE_SECS=1 \
    COLLOQUY_LOG_FORMAT=json RUST_LOG="${RUST_LOG:-warn}" \
    target/debug/colloquy serve --addr "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server=$!
stop_server() {
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap stop_server EXIT

for _ in $(seq 100); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || { cat "$work/server.log"; echo "the server did not start" >&2; exit 1; }
    sleep 0.2
done

echo "== schemathesis against $base/openapi.json"
status=0
# Run from the temporary directory: schemathesis keeps a cache in `./.schemathesis`.
schemathesis="$PWD/$VENV/bin/schemathesis"
(cd "$work" && timeout 240 "$schemathesis" run "$base/openapi.json" \
    --checks "$CHECKS" \
    --phases examples,coverage,fuzzing \
    --max-examples "$MAX_EXAMPLES" \
    --request-timeout 2 \
    --workers 1 \
    --no-color \
    --generation-database none \
    --suppress-health-check too_slow) \
    || status=$?

if [ "$status" -ne 0 ]; then
    echo "== the server's log (warnings and errors)"
    tail -n 50 "$work/server.log"
fi
exit "$status"
