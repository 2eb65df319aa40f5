#!/usr/bin/env bash
# The web console with N agents (default 10,000): loadgen starts the release fleet-edge, enrolls
# and parks the agents (at 80/s, about two minutes for 10k), then runs the browser suite's perf
# mode while the agents keep checking in: first render of the agents page (navigation start to
# the table rendered, fresh page load) and paging/filtering (click to the table rendered again),
# in headless Chromium. Writes target/console-perf/console-perf-N.json and prints the timings.
# Goals (first render ≤ 1 s, paging/filtering ≤ 300 ms) are reported, not enforced; it fails only
# when the harness does (server, agents, browser). Bounded: every loadgen phase by
# --phase-deadline. Called from .ci/run; needs chromium, chromedriver, node (installed there).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TERM_COLOR=never
agents="${CONSOLE_AGENTS:-10000}"
out="${CONSOLE_OUT:-target/console-perf}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cargo build --release --locked -p fleet-edge -p loadgen
(cd tests/console-browser && { [ -d node_modules/selenium-webdriver ] || npm ci --no-audit --no-fund; })
target/release/loadgen console --agents "$agents" --phase-deadline 300 --out "$out" \
    --exec "cd tests/console-browser && CONSOLE_MODE=perf CONSOLE_SCREENSHOTS='$out' CONSOLE_REPORT='$out/console-perf-$agents.json' node suite.js"
test -s "$out/console-perf-$agents.json"
cat "$out/console-perf-$agents.json"
