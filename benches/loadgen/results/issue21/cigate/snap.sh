#!/bin/bash
# Issue 21, CI gate: runs loadgen and copies the server's /proc/<pid>/smaps, status and thread
# names each time loadgen prints an RSS reading ("parked, RSS"), so the readings can be split by
# mapping (smaps-by-mapping.py). Usage, from the worktree, under the bench lock:
#   flock /work/bench.lock snap.sh OUTDIR idle --agents 1000 --cpu-window 5 [--server BIN]
# (LOADGEN=path picks the loadgen binary.) Polls every 50 ms: a copy lags its reading by that.
out=$1; shift
mkdir -p "$out"
"${LOADGEN:-target/release/loadgen}" "$@" --out "$out" 2> "$out/stderr" &
lg=$!
pid=""; seen=0
while kill -0 "$lg" 2>/dev/null; do
  if [ -z "$pid" ]; then pid=$(grep -o 'fleet-edge pid [0-9]*' "$out/stderr" | awk '{print $3}'); fi
  n=$(grep -c 'parked, RSS' "$out/stderr")
  if [ -n "$pid" ] && [ "$n" -gt "$seen" ]; then
     seen=$n; cat "/proc/$pid/smaps" > "$out/smaps.$n"; cat "/proc/$pid/status" > "$out/status.$n"
     for t in /proc/"$pid"/task/*; do echo "${t##*/} $(cat "$t/comm")"; done > "$out/tasks.$n"
  fi
  sleep 0.05
done
wait "$lg"
