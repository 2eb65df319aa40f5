#!/usr/bin/env bash
# OpAMP collectors parked on WebSocket: the server's RSS per collector (README, Performance).
# Starts the release binary in embedded mode (self-signed TLS) on loopback, makes an enrollment
# token with the CLI, opens N WebSocket collectors with the npm `ws` client
# (tests/opamp-client/client.js park; each enrolls with one real protobuf message and stays
# connected), and reads VmRSS from /proc before and after. Bounded: N defaults to 1000.
#   bash benches/opamp/park.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
n="${1:-1000}"
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build --release --locked -p fleet-edge
(cd tests/opamp-client && { [ -d node_modules/ws ] || npm ci --no-audit --no-fund; })

dir="$(mktemp -d)"
port=$((20000 + RANDOM % 20000))
log="$dir/server.log"
target/release/fleet-edge --data-dir "$dir/data" --fleet-server-host 127.0.0.1 \
    --fleet-server-port "$port" --management-port "$((port + 1))" --max-connections 4096 >"$log" 2>&1 &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 1 200); do
    grep -q "management API on" "$log" && break
    kill -0 "$server" || { cat "$log"; exit 1; }
    sleep 0.1
done
token="$(target/release/fleet-edge tokens create --policy fleet-edge-default --data-dir "$dir/data" \
    | sed -n 's/.*"api_key": *"\([^"]*\)".*/\1/p' | head -1)"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$server/status"; }

# One collector first, so that one-time allocations (TLS session cache, first enroll) are not
# charged to the fleet.
fifo="$dir/hold"
mkfifo "$fifo"
node tests/opamp-client/client.js park "wss://127.0.0.1:$port/v1/opamp" "$token" \
    "$dir/data/certs/ca.crt" 1 <"$fifo" >"$dir/warm.out" &
warm=$!
exec 3>"$fifo"
until grep -q parked "$dir/warm.out" 2>/dev/null; do kill -0 "$warm" || exit 1; sleep 0.1; done
before="$(rss)"

fifo2="$dir/hold2"
mkfifo "$fifo2"
start=$SECONDS
node tests/opamp-client/client.js park "wss://127.0.0.1:$port/v1/opamp" "$token" \
    "$dir/data/certs/ca.crt" "$n" <"$fifo2" >"$dir/park.out" &
parker=$!
exec 4>"$fifo2"
until grep -q parked "$dir/park.out" 2>/dev/null; do kill -0 "$parker" || exit 1; sleep 0.2; done
parked_in=$((SECONDS - start))
after="$(rss)"
exec 3>&- 4>&-
wait "$parker" "$warm" || true

per=$(awk -v a="$after" -v b="$before" -v n="$n" 'BEGIN { printf "%.2f", (a - b) / n }')
echo "| collectors parked (WebSocket over TLS) | $n |"
echo "| server RSS before / after | $before KiB / $after KiB |"
echo "| RSS per parked collector | $per KiB |"
echo "| time to enroll and park all | ${parked_in} s |"
