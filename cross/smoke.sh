#!/usr/bin/env bash
# Smoke test of a cross-built fleet-edge under qemu-user (natively for x86_64), on loopback,
# in embedded mode (no Elasticsearch flag) with the server's own self-signed certificate.
#
#   cross/smoke.sh x86_64|aarch64|armv7|all      # tests target/cross/fleet-edge-<short>
#   BIN=/path/to/fleet-edge cross/smoke.sh aarch64   # test another binary of that architecture
#
# Steps, each bounded by a deadline (no bare sleep is ever the condition):
#   1. file(1) must say the binary is static and stripped;
#   2. start `fleet-edge --data-dir D --fleet-server-host 127.0.0.1 --fleet-server-port P`
#      (qemu runs with an empty ELF-interpreter prefix, so a dynamic binary could not start);
#   3. wait until stderr has `listening on https://127.0.0.1:P` and D/certs/ca.crt exists
#      (fails at once if the process exits);
#   4. `GET /api/status` over TLS, verified with curl --cacert D/certs/ca.crt, until
#      200 `{"name":"fleet-server","status":"HEALTHY"}` or the start deadline;
#   5. SIGTERM; the process must exit with status 0 within SMOKE_STOP_TIMEOUT.
#
# Tunables (seconds): SMOKE_START_TIMEOUT (default 60: qemu + key generation on a busy machine),
# SMOKE_STOP_TIMEOUT (default 30: the server's drain timeout is 10 s). SMOKE_KEEP=1 keeps the
# temporary directory (data dir and logs) for inspection.
set -euo pipefail

# shellcheck source=cross/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

START_TIMEOUT=${SMOKE_START_TIMEOUT:-60}
STOP_TIMEOUT=${SMOKE_STOP_TIMEOUT:-30}
EXPECTED_STATUS='{"name":"fleet-server","status":"HEALTHY"}'

now() { date +%s; }

# A port nobody listens on right now (the kernel picks it; a small race is acceptable here).
free_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    else
        local p
        for _ in $(seq 50); do
            p=$(( 20000 + RANDOM % 30000 ))
            (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
        done
        die "no free port found"
    fi
}

# Globals of the running test, for the EXIT trap.
PID=
TMP=

cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -KILL "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    if [ -n "$TMP" ]; then
        if [ "${SMOKE_KEEP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
    fi
}
trap cleanup EXIT

fail() {
    echo "$SELF: FAIL ($SHORT): $*" >&2
    if [ -n "$TMP" ]; then
        echo "--- server stderr (last 40 lines) ---" >&2
        tail -n 40 "$TMP/stderr.log" >&2 2>/dev/null || true
        echo "--- server stdout (last 20 lines) ---" >&2
        tail -n 20 "$TMP/stdout.log" >&2 2>/dev/null || true
    fi
    exit 1
}

# json_get PATH: reads JSON on stdin, prints the value at a dotted path (numbers index arrays).
json_get() {
    python3 -c 'import json, sys
v = json.load(sys.stdin)
for part in sys.argv[1].split("."):
    v = v[int(part)] if isinstance(v, list) else v[part]
print(v if not isinstance(v, (dict, list)) else json.dumps(v))' "$1"
}

# post URL AUTH BODY_FILE [gzip]: POST as an Elastic Agent does; sets $code and $body.
post() {
    local out extra=()
    [ "${4:-}" = gzip ] && extra=(-H "Content-Encoding: gzip")
    out=$(curl -sS --max-time 20 --compressed --cacert "$ca" -X POST \
            -H "Authorization: ApiKey $2" -H "User-Agent: Elastic Agent v9.2.1" \
            -H "Elastic-Api-Version: 2023-06-01" -H "Content-Type: application/json" -H "kbn-xsrf: 1" \
            "${extra[@]}" --data-binary @"$3" -w '\n%{http_code}' "$1" 2>&1) || out=$'curl failed\n000'
    code=${out##*$'\n'}
    body=${out%$'\n'*}
}

agent_round_trip() {
    local url=$1 ca=$2 token id key action
    token=$(sed -n 's/.*--enrollment-token=\([^ ]*\).*/\1/p' "$TMP/stdout.log" | head -n 1)
    [ -n "$token" ] || fail "no enrollment token in the quick start output"
    printf '%s' '{"type":"PERMANENT","id":"","replace_token":"","metadata":{"local":{"elastic":{"agent":{"id":"","version":"9.2.1"}},"host":{"hostname":"smoke"}},"user_provided":{},"tags":["smoke"]}}' >"$TMP/enroll.json"
    post "$url/api/fleet/agents/enroll?" "$token" "$TMP/enroll.json"
    [ "$code" = 200 ] || fail "enroll: $code $body"
    id=$(printf '%s' "$body" | json_get item.id) || fail "enroll reply without item.id: $body"
    key=$(printf '%s' "$body" | json_get item.access_api_key) || fail "enroll reply without a key: $body"
    echo "enroll: 200, agent $id"

    printf '%s' '{"status":"starting","message":"smoke","components":[],"upgrade":{}}' | gzip -c >"$TMP/checkin.gz"
    post "$url/api/fleet/agents/$id/checkin?" "$key" "$TMP/checkin.gz" gzip
    [ "$code" = 200 ] || fail "checkin: $code $body"
    [ "$(printf '%s' "$body" | json_get actions.0.type)" = POLICY_CHANGE ] || fail "checkin without POLICY_CHANGE: $body"
    action=$(printf '%s' "$body" | json_get actions.0.id)
    echo "checkin: 200, $action"

    printf '{"events":[{"type":"ACTION_RESULT","subtype":"ACKNOWLEDGED","agent_id":"%s","action_id":"%s","message":"ok","timestamp":"2026-01-01T00:00:00Z"}]}' \
        "$id" "$action" >"$TMP/ack.json"
    post "$url/api/fleet/agents/$id/acks?" "$key" "$TMP/ack.json"
    [ "$code" = 200 ] || fail "ack: $code $body"
    [ "$(printf '%s' "$body" | json_get action)" = acks ] || fail "ack reply: $body"
    echo "ack: 200 $body"
}

smoke_one() {
    SHORT=$1
    local bin=${BIN:-$CROSS_OUT_DIR/fleet-edge-$SHORT} qemu desc port data ca url deadline
    local code body rc t0
    t0=$(now)
    triple_of "$SHORT" >/dev/null
    qemu=$(qemu_of "$SHORT")
    [ -x "$bin" ] || die "no binary $bin (build it first: cross/build.sh $SHORT)"

    # 1. static and stripped
    desc=$(file -b "$bin")
    echo "=== smoke $SHORT: $bin"
    echo "file: $desc"
    case $desc in
        *"dynamically linked"*|*interpreter*) fail "not a static binary" ;;
        *"statically linked"*|*"static-pie linked"*) ;;
        *) fail "file(1) does not say static" ;;
    esac

    # 2. start it
    TMP=$(mktemp -d /tmp/fleet-edge-smoke.XXXXXX)
    data=$TMP/data
    mkdir -p "$data" "$TMP/empty-sysroot"
    ca=$data/certs/ca.crt
    port=$(free_port)
    url=https://127.0.0.1:$port
    local cmd=("$bin" --data-dir "$data" --fleet-server-host 127.0.0.1 --fleet-server-port "$port"
               --management-port 0 --checkin-long-poll 10s --checkin-jitter 0s)
    # -L: ELF interpreter prefix = an empty dir, so only a truly static binary can start (the host
    # has /lib/ld-musl-aarch64.so.1 etc. from musl:arm64/armhf, which would hide a dynamic one).
    [ -z "$qemu" ] || cmd=("$qemu" -L "$TMP/empty-sysroot" "${cmd[@]}")
    echo "run: ${cmd[*]}"
    "${cmd[@]}" >"$TMP/stdout.log" 2>"$TMP/stderr.log" </dev/null &
    PID=$!

    # 3. wait for the listening line and the CA file
    deadline=$(( $(now) + START_TIMEOUT ))
    until grep -qF "listening on $url" "$TMP/stderr.log" && [ -s "$ca" ]; do
        if ! kill -0 "$PID" 2>/dev/null; then
            rc=0; wait "$PID" || rc=$?; PID=
            fail "server exited with status $rc before it was listening on $url"
        fi
        [ "$(now)" -lt "$deadline" ] ||
            fail "no 'listening on $url' on stderr and/or no $ca within ${START_TIMEOUT}s"
        sleep 0.1
    done
    echo "listening after $(( $(now) - t0 ))s"

    # 4. GET /api/status over verified TLS (retried until the deadline: the self-monitor may
    #    report STARTING with 503 for a moment)
    until
        code=$(curl -sS --max-time 10 --cacert "$ca" -o "$TMP/status.body" -w '%{http_code}' \
                    "$url/api/status" 2>"$TMP/curl.err") || code="curl-error: $(cat "$TMP/curl.err")"
        body=$(cat "$TMP/status.body" 2>/dev/null || true)
        [ "$code" = 200 ] && [ "$body" = "$EXPECTED_STATUS" ]
    do
        kill -0 "$PID" 2>/dev/null || fail "server died while waiting for /api/status"
        [ "$(now)" -lt "$deadline" ] ||
            fail "GET /api/status: got $code '$body', want 200 '$EXPECTED_STATUS'"
        sleep 0.2
    done
    echo "GET /api/status: $code $body"

    # 5. one agent, run natively on the host (only the server is emulated): enroll with the
    #    token the quick start printed, check in with a gzip body, receive the POLICY_CHANGE, ack it.
    agent_round_trip "$url" "$ca"

    # 6. SIGTERM -> exit 0 within the drain timeout
    kill -TERM "$PID"
    deadline=$(( $(now) + STOP_TIMEOUT ))
    while kill -0 "$PID" 2>/dev/null; do
        if [ "$(now)" -ge "$deadline" ]; then
            fail "still running ${STOP_TIMEOUT}s after SIGTERM"
        fi
        sleep 0.1
    done
    rc=0; wait "$PID" || rc=$?; PID=
    [ "$rc" = 0 ] || fail "exit status $rc after SIGTERM, want 0"
    echo "SIGTERM: exit 0"
    echo "=== smoke $SHORT: PASS in $(( $(now) - t0 ))s"

    if [ "${SMOKE_KEEP:-0}" != 1 ]; then rm -rf "$TMP"; fi
    TMP=
}

[ $# -ge 1 ] || die "usage: $0 x86_64|aarch64|armv7|all ..."
targets=("$@")
[ "$1" != all ] || targets=(x86_64 aarch64 armv7)
[ -z "${BIN:-}" ] || [ ${#targets[@]} -eq 1 ] || die "BIN= names one binary: give one target"
for t in "${targets[@]}"; do triple_of "$t" >/dev/null; done
# qemu-user for the ARM targets, curl for the TLS check, file for the static check.
ensure_pkgs qemu-user-static curl file
for t in "${targets[@]}"; do smoke_one "$t"; done
