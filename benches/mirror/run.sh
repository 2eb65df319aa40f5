#!/usr/bin/env bash
# Artifact mirror benchmark (issue 17): N agents download one package from fleet-edge's
# /downloads/ at once over TLS, then from a plain static file server (Python's threading
# http.server behind the same certificate, TLS too) on the same loopback in the same run.
# Prints aggregate throughput of each and fleet-edge's baseline and peak RSS (VmHWM).
#
#   benches/mirror/run.sh [AGENTS=50] [SIZE_MIB=300] [BIN=target/release/fleet-edge]
#
# Needs curl and python3. The package is random bytes (not a sparse file: holes would be read
# from no page at all). Everything lives in a temporary directory, removed at the end.
set -euo pipefail

agents=${1:-50}
size_mib=${2:-300}
bin=${3:-target/release/fleet-edge}
[ -x "$bin" ] || { echo "no fleet-edge binary at $bin (cargo build --release)" >&2; exit 2; }

work=$(mktemp -d)
server_pid=""
static_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  [ -n "$static_pid" ] && kill "$static_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

port=$(free_port)
data="$work/data"
"$bin" --data-dir "$data" --fleet-server-host 127.0.0.1 --fleet-server-port "$port" \
  --management-port 0 --max-connections 1000 >"$work/stdout" 2>"$work/log" &
server_pid=$!
for _ in $(seq 1 300); do
  grep -q "listening on" "$work/log" 2>/dev/null && break
  sleep 0.1
done
grep -q "listening on" "$work/log" || { cat "$work/log" >&2; exit 1; }

package="$data/downloads/beats/elastic-agent/elastic-agent-9.6.0-linux-x86_64.tar.gz"
mkdir -p "$(dirname "$package")"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom >"$package"
ca="$data/certs/ca.crt"
# Warm the page cache for both servers alike.
cat "$package" >/dev/null

rss() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
baseline=$(rss "$server_pid" VmRSS)

# Each client: bytes and seconds; the run: wall time from the first start to the last end.
download_all() {
  local url=$1 out=$2
  local start end
  start=$(date +%s.%N)
  for _ in $(seq 1 "$agents"); do
    curl -s --fail --cacert "$ca" -o /dev/null -w '%{size_download}\n' "$url" >>"$out" &
  done
  wait
  end=$(date +%s.%N)
  python3 - "$out" "$start" "$end" "$agents" "$size_mib" <<'PY'
import sys
out, start, end, agents, size = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
sizes = [int(l) for l in open(out) if l.strip()]
complete = sum(1 for s in sizes if s == size * 1024 * 1024)
total = sum(sizes) / (1024 * 1024)
print(f"{complete}/{agents} complete, {total:.0f} MiB in {end - start:.1f} s: {total / (end - start):.0f} MiB/s")
PY
}

edge=$(download_all "https://localhost:$port/downloads/beats/elastic-agent/$(basename "$package")" "$work/edge")
peak=$(rss "$server_pid" VmHWM)

static_port=$(free_port)
cat >"$work/static.py" <<PY
import http.server, ssl, functools, os
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory="$data/downloads")
httpd = http.server.ThreadingHTTPServer(("127.0.0.1", $static_port), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("$data/certs/server.crt", "$data/certs/server.key")
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
httpd.serve_forever()
PY
python3 "$work/static.py" 2>"$work/static.log" &
static_pid=$!
for _ in $(seq 1 100); do
  curl -s --cacert "$ca" -o /dev/null "https://localhost:$static_port/" && break
  sleep 0.1
done
static=$(download_all "https://localhost:$static_port/beats/elastic-agent/$(basename "$package")" "$work/static")

echo "| server | ${agents} × ${size_mib} MiB over TLS |"
echo "|---|---|"
echo "| fleet-edge /downloads/ | $edge |"
echo "| Python threading http.server + TLS | $static |"
echo
echo "fleet-edge RSS: baseline $((baseline / 1024)) MiB, peak $((peak / 1024)) MiB (+$(((peak - baseline) / 1024)) MiB)"
