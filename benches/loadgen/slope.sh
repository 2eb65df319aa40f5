#!/usr/bin/env bash
# RSS per parked TLS agent across fleet sizes (issue 21 §4): `loadgen idle` at each N, then a
# least-squares line through (N, server RSS with N parked) and what it gives per box size.
#
#   bash benches/loadgen/slope.sh                      # N = 2000 5000 10000 18000
#   SLOPE_AGENTS="1000 2000" bash benches/loadgen/slope.sh
#   SLOPE_OUT=dir bash benches/loadgen/slope.sh        # reports (default target/loadgen/slope)
#
# Each N is a fresh server (`loadgen idle` starts one on a fresh data dir), so the points are
# independent. 18,000 is near this machine's hard descriptor limit (20,000 per process: the
# server holds one descriptor per parked agent, the load generator another). Setup enrolls at
# loadgen's default 80/s, so the four default sizes take about 10 minutes. Needs the release
# build of fleet-edge and loadgen (`cargo build --release -p fleet-edge -p loadgen`).
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${SLOPE_OUT:-target/loadgen/slope}"
read -r -a sizes <<<"${SLOPE_AGENTS:-2000 5000 10000 18000}"
mkdir -p "$out"

# One JSON number of a report: the value after `"<key>":`.
field() { # field FILE KEY
    grep -o "\"$2\": [0-9.e+-]*" "$1" | head -1 | sed 's/.*: //'
}

points="$out/points.tsv"
: >"$points"
for n in "${sizes[@]}"; do
    echo "=== loadgen idle --agents $n ($(uptime | sed 's/.*load/load/'))"
    target/release/loadgen idle --agents "$n" --cpu-window 5 --phase-deadline 900 --out "$out"
    json="$out/loadgen-idle-$n.json"
    parked=$(field "$json" "agents parked")
    rss=$(field "$json" "server RSS with N parked (MiB)")
    empty=$(field "$json" "server RSS, empty (no agents) (MiB)")
    per=$(field "$json" "RSS per parked agent (delta over empty) (KiB)")
    if [ -z "$parked" ] || [ -z "$rss" ]; then
        echo "slope: no parked figure in $json" >&2
        exit 1
    fi
    printf '%s\t%s\t%s\t%s\n' "$parked" "$rss" "$empty" "$per" >>"$points"
done

# Least squares over (agents parked, RSS MiB); per-box counts from the fitted line.
awk -F'\t' -v cmd="SLOPE_AGENTS=\"${sizes[*]}\" bash benches/loadgen/slope.sh" '
    { n[NR] = $1; r[NR] = $2; e[NR] = $3; p[NR] = $4; sx += $1; sy += $2; sxx += $1 * $1; sxy += $1 * $2 }
    END {
        if (NR < 2) { print "slope: need two sizes or more" > "/dev/stderr"; exit 1 }
        slope = (NR * sxy - sx * sy) / (NR * sxx - sx * sx); icpt = (sy - slope * sx) / NR
        printf "| parked agents | server RSS, empty (MiB) | server RSS with N parked (MiB) | per agent, delta over empty (KiB) |\n|---|---|---|---|\n"
        for (i = 1; i <= NR; i++) printf "| %d | %.2f | %.2f | %.2f |\n", n[i], e[i], r[i], p[i]
        printf "\nLeast squares over the %d sizes: **%.2f KiB per parked agent** (slope), intercept %.2f MiB.\n\n", NR, slope * 1024, icpt
        printf "| box memory for fleet-edge | parked TLS agents on that line |\n|---|---|\n"
        split("256 512 1024", box, " ")
        for (i = 1; i <= 3; i++) printf "| %d MiB | %d |\n", box[i], (box[i] - icpt) / slope
        printf "\n`%s`\n", cmd
    }' "$points" | tee "$out/slope.md"
