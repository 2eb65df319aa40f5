#!/bin/bash
# usage: snap.sh outdir -- loadgen args ; snapshots smaps_rollup/smaps/status of server at each "parked, RSS" line
out=$1; shift
mkdir -p $out
${LOADGEN:-target/release/loadgen} "$@" --out $out 2> $out/stderr &
lg=$!
pid=""; seen=0
while kill -0 $lg 2>/dev/null; do
  if [ -z "$pid" ]; then pid=$(grep -o 'fleet-edge pid [0-9]*' $out/stderr | awk '{print $3}'); fi
  n=$(grep -c 'parked, RSS' $out/stderr)
  if [ -n "$pid" ] && [ "$n" -gt "$seen" ]; then
     seen=$n; cat /proc/$pid/smaps > $out/smaps.$n; cat /proc/$pid/status > $out/status.$n
     ls /proc/$pid/task | while read t; do echo "$t $(cat /proc/$pid/task/$t/comm)"; done > $out/tasks.$n
  fi
  sleep 0.05
done
wait $lg
