#!/usr/bin/env bash
# The per-agent heap budget of the README: N simulated agents (benches/loadgen) parked on a
# release build with symbols under heaptrack; the server is killed (SIGKILL, so nothing is freed)
# once every agent is parked, and what was still allocated is classified by allocation site
# (classify.py). Usage: bash benches/heap/budget.sh [N] [--plain]. Needs heaptrack and python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
n="${1:-1000}"
shift || true
out="${HEAP_OUT:-target/heap}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
rm -f "$out"/fe.*
CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
    cargo build --release --locked -p fleet-edge --target-dir target/prof
cargo build --release --locked -p loadgen
cat > "$out/server.sh" <<WRAP
#!/usr/bin/env bash
exec heaptrack -o "$out/fe" "$PWD/target/prof/release/fleet-edge" "\$@"
WRAP
chmod +x "$out/server.sh"
target/release/loadgen idle --agents "$n" --cpu-window 60 --phase-deadline 400 \
    --server "$out/server.sh" "$@" >"$out/loadgen.log" 2>&1 &
loadgen=$!
deadline=$((SECONDS + 600))
until grep -q "measuring CPU" "$out/loadgen.log"; do
    if ((SECONDS > deadline)) || ! kill -0 "$loadgen" 2>/dev/null; then
        echo "the fleet never parked; see $out/loadgen.log" >&2
        exit 1
    fi
    sleep 1
done
server=$(pgrep -n -f "^$PWD/target/prof/release/fleet-edge ")
grep -E '^(VmRSS|RssAnon|RssFile)' "/proc/$server/status"
kill -9 "$server"
wait "$loadgen" || true
heaptrack_print -f "$out"/fe.*st --print-peaks 0 --print-allocators 0 --print-temporary 0 \
    --print-leaks 0 --print-flamegraph "$out/live.folded" --flamegraph-cost-type leaked |
    grep -E 'peak heap|leaked'
python3 benches/heap/classify.py "$out/live.folded" "$n"
