#!/usr/bin/env bash
# The cross part of CI (called by .ci/run): static builds for x86_64, aarch64 and armv7 (the
# binaries packaging/build.sh packages next), the library's unit tests on 32-bit armv7 under qemu,
# and the smoke test of each built binary (qemu for the ARM ones).
#
#   bash cross/ci.sh                          # default targets: x86_64 aarch64 armv7
#   CROSS_CI_TARGETS="aarch64" bash cross/ci.sh
#
# Heavy steps first, the (sub-second) smoke tests last. Fails on the first failing step.
# Runs as root on a fresh machine: cross/build.sh installs everything it needs.
set -euo pipefail
# shellcheck source=cross/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
here=$(dirname "${BASH_SOURCE[0]}")
read -r -a targets <<<"${CROSS_CI_TARGETS:-x86_64 aarch64 armv7}"

t_all=$(date +%s)
step() {   # step NAME CMD...: run, time, report
    local name=$1 s; shift
    s=$(date +%s)
    echo "##### cross ci: $name"
    "$@"
    echo "##### cross ci: $name: ok in $(( $(date +%s) - s ))s"
}

step "setup" "$here/build.sh" setup
for t in "${targets[@]}"; do step "build $t" "$here/build.sh" "$t"; done
step "armv7 unit tests under qemu" "$here/test-armv7.sh"
for t in "${targets[@]}"; do step "smoke $t" "$here/smoke.sh" "$t"; done
echo "##### cross ci: all ok in $(( $(date +%s) - t_all ))s (targets: ${targets[*]})"
