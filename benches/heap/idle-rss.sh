#!/usr/bin/env bash
# benches/heap/idle-rss.sh BINARY [SECS]: starts the server on loopback in a fresh data dir (first start
# creates certs and store; it is stopped and started again), waits SECS (default 10) after the
# second start, prints RSS fields and the largest mappings, then stops it (SIGTERM by pid).
# IDLE_RSS_SECTIONS=1 also prints the binary's resident kB per ELF section (resident.py, root).
set -u
bin="$1"; secs="${2:-10}"; dir=$(mktemp -d /tmp/mem-idle.XXXX)
for round in 1 2; do
  "$bin" --fleet-server-host 127.0.0.1 --fleet-server-port 0 --management-port 0 --data-dir "$dir" --log-level warn >/dev/null 2>&1 &
  pid=$!
  ( sleep 60; kill "$pid" 2>/dev/null ) &
  watchdog=$!
  sleep "$secs"
  if [ "$round" = 2 ]; then
    grep -E '^(VmRSS|RssAnon|RssFile|Threads)' "/proc/$pid/status" | tr -s ' \t' ' ' | tr '\n' ' '; echo
    awk '/^[0-9a-f]+-/{name=$6; if (name=="") name="[anon]"} /^Rss:/{r[name]+=$2} END{for(n in r) if (r[n]>=50) printf "%6d kB %s\n", r[n], n}' "/proc/$pid/smaps" | sort -rn | head -8
    if [ "${IDLE_RSS_SECTIONS:-0}" = 1 ]; then python3 "$(dirname "$0")/resident.py" "$pid" "$bin"; fi
  fi
  kill "$pid"; wait "$pid" 2>/dev/null
  kill "$watchdog" 2>/dev/null; wait "$watchdog" 2>/dev/null
done
rm -rf "$dir"
