#!/usr/bin/env bash
# layout/profile.sh [cross|aarch64|armv7]: regenerates the link-order profile layout/<target>.order (what build.rs turns
# into the linker script that puts start-up/idle code first; README "Idle RSS").
#
# The profiled binary is the shipped one: `cargo build --release` as it is, plus the linker's map
# (FLEET_EDGE_LINK_MAP; only the binary is relinked, ~3 min). It has to be that very build: the
# symbols' hashes depend on the crate's -C metadata (package, features, the whole release
# profile, strip included, target, rustc version), not on the source, so a profile taken from an
# unstripped build would name functions the shipped build does not have. The map names what ran
# at each address (layout/callgrind-names.py); build.rs also matches every other target (the musl
# cross builds: another rustc, other hashes) by the names without the hash.
#
# What runs, under valgrind's callgrind (installed with apt-get when missing), the server started
# as benches/heap/idle-rss.sh starts it (the ARM builds: under qemu-user instead, whose
# `-d in_asm` log lists every instruction it translated, i.e. all code that ran; valgrind does
# not run them):
#   phase 1: the second start on a data dir (the first start, unprofiled, made certs and store),
#            then IDLE_SECS (default 20) idle with no agent: what idle RSS measures;
#   phase 2: one agent's enroll, checkin (gzip body, POLICY_CHANGE received) and ack, over TLS.
# Each function is listed once, at the first phase it ran in ("<phase> <mangled name>").
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE_SECS=${IDLE_SECS:-20}
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
if [ -n "${PROFILE_BIN:-}" ]; then
    :   # PROFILE_BIN + PROFILE_MAP: a binary already built with FLEET_EDGE_LINK_MAP (and its map)
elif [ "${1:-}" = cross ]; then
    # the static x86_64 musl build (GNU ld; another rustc, so other names: v0 mangling)
    map=$target_dir/layout-profile-musl.map
    FLEET_EDGE_LINK_MAP=$map bash cross/build.sh x86_64
    bin=$target_dir/cross/fleet-edge-x86_64
elif [ "${1:-}" = aarch64 ] || [ "${1:-}" = armv7 ]; then
    map=$target_dir/layout-profile-$1.map
    FLEET_EDGE_LINK_MAP=$map bash cross/build.sh "$1"
    bin=$target_dir/cross/fleet-edge-$1
else
    map=$target_dir/layout-profile.map
    FLEET_EDGE_LINK_MAP=$map cargo build --release --locked --bin fleet-edge
    bin=$target_dir/release/fleet-edge
fi
bin=${PROFILE_BIN:-$bin}
map=${PROFILE_MAP:-$map}
# a binary of another architecture runs under qemu-user (e_machine: 62 x86-64, 183 AArch64, 40 ARM)
run=()
case $(od -An -tu2 -j18 -N2 "$bin" | tr -d ' '):$(uname -m) in
    183:x86_64) run=(qemu-aarch64-static) ;;
    40:x86_64) run=(qemu-arm-static) ;;
esac
if [ ${#run[@]} = 0 ] && { ! command -v valgrind >/dev/null || ! command -v callgrind_control >/dev/null; }; then
    apt-get update -qq && apt-get install -y -qq valgrind >/dev/null
fi
triple=$("${run[@]}" "$bin" --version | sed -n 's/.*\(x86_64\|aarch64\|armv7\)\([-a-z0-9_]*\).*/\1\2/p' | head -n 1)
[ -n "$triple" ] || { echo "cannot tell the target triple from '$bin --version'" >&2; exit 1; }

tmp=$(mktemp -d /tmp/layout-profile.XXXX)
pid=
cleanup() { [ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=https://127.0.0.1:$port
ca=$tmp/data/certs/ca.crt
args=(--fleet-server-host 127.0.0.1 --fleet-server-port "$port" --management-port 0 --data-dir "$tmp/data")

# wait_up: until the port is in LISTEN state in /proc/net/tcp (valgrind starts the server ~50x
# slower). Read from the kernel, so waiting runs no server code that idle RSS would not run.
wait_up() {
    local hex; hex=$(printf ':%04X 00000000:0000 0A' "$port")
    for _ in $(seq 600); do
        kill -0 "$pid" 2>/dev/null || { echo "server exited" >&2; exit 1; }
        grep -q "$hex" /proc/net/tcp && [ -s "$ca" ] && return 0
        sleep 0.2
    done
    echo "server not listening after 120 s" >&2; exit 1
}

"${run[@]}" "$bin" "${args[@]}" >"$tmp/first.out" 2>"$tmp/first.err" & pid=$!
wait_up
kill -TERM "$pid"; wait "$pid" || true; pid=
token=$(sed -n 's/.*--enrollment-token=\([^ ]*\).*/\1/p' "$tmp/first.out" | head -n 1)
[ -n "$token" ] || { echo "no enrollment token in the first start's output" >&2; exit 1; }

if [ ${#run[@]} -gt 0 ]; then
    "${run[@]}" -d in_asm -D "$tmp/qemu.log" "$bin" "${args[@]}" --log-level warn >"$tmp/second.out" 2>"$tmp/second.err" & pid=$!
else
    valgrind --tool=callgrind --dump-instr=yes --compress-pos=no --callgrind-out-file="$tmp/cg.%p" \
        "$bin" "${args[@]}" --log-level warn >"$tmp/second.out" 2>"$tmp/second.err" & pid=$!
fi
wait_up
# callgrind writes run-time addresses: a PIE's load address comes off (0 for a static non-PIE)
base=$(awk -v b="$(readlink -f "$bin")" '$6 == b && $3 == "00000000" { print $1; exit }' "/proc/$pid/maps")
base=${base%%-*}
case $(readelf -h "$bin") in *"EXEC ("*) base=0 ;; esac
sleep "$IDLE_SECS"          # the idle timers' periods, not a condition: nothing to wait for
if [ ${#run[@]} -gt 0 ]; then
    # phase 1 is the log so far (qemu writes it as it translates), phase 2 what follows
    lines=$(wc -l <"$tmp/qemu.log")
    bash layout/agent-cycle.sh "$url" "$ca" "$token"
    kill -TERM "$pid"; wait "$pid" || true
    head -n "$lines" "$tmp/qemu.log" >"$tmp/cg.$pid.1"
    tail -n +"$((lines + 1))" "$tmp/qemu.log" >"$tmp/cg.$pid.2"
else
    callgrind_control -d "$pid" >/dev/null 2>&1
    bash layout/agent-cycle.sh "$url" "$ca" "$token"
    callgrind_control -d "$pid" >/dev/null 2>&1
    kill -TERM "$pid"; wait "$pid" || true
fi
out=layout/$triple.order
{
    echo "# $out: functions that ran, by phase (1 start-up + idle, 2 enroll/checkin/ack); generated by"
    echo "# layout/profile.sh from $(git rev-parse --short=12 HEAD) with $("${run[@]}" "$bin" --version | head -n 1)"
    python3 layout/callgrind-names.py "$map" "$base" "$tmp/cg.$pid.1" "$tmp/cg.$pid.2"
} >"$out"
pid=
echo "$out: $(grep -c '^1 ' "$out") symbols in phase 1, $(grep -c '^2 ' "$out") in phase 2"
