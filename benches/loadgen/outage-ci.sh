#!/usr/bin/env bash
# CI step of issue 15 §1: a short `loadgen outage` run (200 agents, 20 s phases) in
# Elasticsearch mode against an es-standin process. Unlike the load benchmark's goals, these are
# enforced: any request left without an answer, any 401, or any acked result missing from
# .fleet-actions-results fails the build (`--enforce`). About 3 minutes after the release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TERM_COLOR=never
out="${LOADGEN_OUT:-target/loadgen}"
mkdir -p "$out"

cargo build --release --locked -p fleet-edge -p loadgen -p es-standin
target/release/loadgen outage --agents "${OUTAGE_AGENTS:-200}" --phase-secs 20 \
    --outage-long-poll 10 --backend-timeout 5 --agent-timeout 30 --backoff-scale 0.1 \
    --enforce --out "$out"
test -s "$out/loadgen-outage-${OUTAGE_AGENTS:-200}.json"
