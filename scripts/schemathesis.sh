#!/usr/bin/env bash
# Fuzzes the API against its own OpenAPI document with schemathesis: the
# debug binary serves on a free port with the offline model and a temporary
# database; every generated request must get no 5xx, a documented status, a
# documented content type, and a body that matches its documented schema.
# Two runs, each against a server of its own:
#
#   anonymous  COLLOQUY_AUTH=none; every operation, MAX_EXAMPLES each (40),
#              event streams read for 1 s each; about two minutes.
#   keys       COLLOQUY_AUTH=keys, with a key made by `colloquy keys create`
#              sent as `Authorization: Bearer`; only the /api routes, the ones
#              whose answers depend on who asks (the caller's own sessions,
#              stream tokens, `?token=` on the event stream; the page, health,
#              metrics and docs routes answer the same either way), with
#              KEYED_MAX_EXAMPLES each (5) and event streams read for 1 s;
#              under a minute.
#
#   scripts/schemathesis.sh            # what CI runs: both
#   RUNS=keys scripts/schemathesis.sh  # one of them
#   MAX_EXAMPLES=200 KEYED_MAX_EXAMPLES=50 scripts/schemathesis.sh
#   CHECKS=all scripts/schemathesis.sh
#
# Event streams (`…/events`, `/api/chat/receive/…`) stay open as long as their
# session exists: schemathesis reads each for the request timeout and checks
# every event it got against the `ServerSentEvent` schema. The stateful phase
# (chains of calls through links) is left out to keep the runs short;
# `--checks all` also fails on a false positive of schemathesis's negative
# data for the send body's "`content` or `message`" (an `anyOf`).
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION="4.32.5"
TARGET="${CARGO_TARGET_DIR:-target}"
VENV="$TARGET/schemathesis-venv"
COLLOQUY="$TARGET/debug/colloquy"
MAX_EXAMPLES="${MAX_EXAMPLES:-40}"
KEYED_MAX_EXAMPLES="${KEYED_MAX_EXAMPLES:-5}"
RUNS="${RUNS:-anonymous keys}"
for run in $RUNS; do
    case "$run" in
        anonymous | keys) ;;
        *) echo "RUNS takes \`anonymous\` and \`keys\`, not \`$run\`" >&2; exit 2 ;;
    esac
done
CHECKS="${CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance}"

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    echo "== installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
schemathesis="$(cd "$VENV/bin" && pwd)/schemathesis"

cargo build --quiet --workspace --bins

work="$(mktemp -d)"
servers=()
stop_servers() {
    for server in "${servers[@]}"; do
        kill -TERM "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap stop_servers EXIT

# The environment of a server NAME (its own database), as `colloquy` sees it.
# The fuzzer sends more requests a minute than the default rate limit allows:
# with it on, most of the run would be documented 429s and test nothing else
# (the limits have tests of their own).
colloquy_env() {
    local name="$1"
    shift
    env -u OPENAI_API_KEY -u OPENAI_BASE_URL \
        COLLOQUY_LLM=offline DATABASE_URL="$work/$name.db" COLLOQUY_SHUTDOWN_GRACE_SECS=1 \
        COLLOQUY_RATE_LIMIT_PER_MINUTE=0 \
        COLLOQUY_LOG_FORMAT=json RUST_LOG="${RUST_LOG:-warn}" "$@"
}

# Starts server NAME with the extra VAR=VALUE settings given, on a free port;
# sets `base` to its URL once it is ready.
serve() {
    local name="$1"
    shift
    local port pid
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    base="http://127.0.0.1:$port"
    colloquy_env "$name" "$@" "$COLLOQUY" serve --addr "127.0.0.1:$port" >"$work/$name.log" 2>&1 &
    pid=$!
    servers+=("$pid")
    for _ in $(seq 100); do
        curl -fsS "$base/readyz" >/dev/null 2>&1 && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    cat "$work/$name.log"
    echo "the $name server did not start" >&2
    exit 1
}

# Runs schemathesis against `base` (server NAME) for at most SECONDS, reading
# each event stream for STREAM_SECONDS, with the further options given;
# prints the server's warnings when it fails.
fuzz() {
    local name="$1" seconds="$2" stream_seconds="$3"
    shift 3
    local status=0
    # Run from the temporary directory: schemathesis keeps a cache in `./.schemathesis`.
    (cd "$work" && timeout "$seconds" "$schemathesis" run "$base/openapi.json" \
        --checks "$CHECKS" \
        --phases examples,coverage,fuzzing \
        --request-timeout "$stream_seconds" \
        --workers 1 \
        --no-color \
        --generation-database none \
        --suppress-health-check too_slow \
        "$@") \
        || status=$?
    if [ "$status" -ne 0 ]; then
        echo "== the $name server's log (warnings and errors)"
        tail -n 50 "$work/$name.log"
    fi
    return "$status"
}

fuzz_anonymous() {
    serve anonymous
    echo "== schemathesis against $base/openapi.json (no authentication)"
    fuzz anonymous 240 1 --max-examples "$MAX_EXAMPLES"
}

fuzz_keys() {
    local key
    # Checked by hand: `set -e` does not hold in a function called from `||`,
    # and a run without a key would pass on documented 401s alone.
    key="$(colloquy_env keys "$COLLOQUY" keys create --principal schemathesis --label "scripts/schemathesis.sh" | tail -n 1)"
    case "$key" in
        ck_*) ;;
        *) echo "colloquy keys create printed no key" >&2; exit 1 ;;
    esac
    serve keys COLLOQUY_AUTH=keys
    curl -fsS -o /dev/null -H "Authorization: Bearer $key" "$base/api/v1/sessions" \
        || { echo "the keys server refuses the key it was given" >&2; exit 1; }
    echo "== schemathesis against $base/openapi.json (API keys, the /api routes)"
    # The key is masked in whatever schemathesis prints (`--output-sanitize`
    # is on by default).
    fuzz keys 120 1 --max-examples "$KEYED_MAX_EXAMPLES" \
        --header "Authorization: Bearer $key" \
        --include-path-regex '^/api/'
}

status=0
for run in $RUNS; do
    started=$(date +%s)
    "fuzz_$run" || status=$?
    echo "== the $run run took $(($(date +%s) - started)) s"
done
exit "$status"
