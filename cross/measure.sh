#!/usr/bin/env bash
# Measurements behind cross/README.md: size and speed of the release profile per opt-level, and
# the biggest size contributors (cargo-bloat, from crates.io).
#
#   cross/measure.sh speed <short> [opt-level...]  # build cross/probe per opt-level (default: s z),
#                                                  # print size, run it (x86_64: natively, best of
#                                                  # 5; ARM: under qemu, --quick, best of 3)
#   PROBE_FEATURES=mimalloc cross/measure.sh speed ...   # the probe with another global allocator
#   cross/measure.sh bloat <short> [probe]         # cargo bloat --crates of fleet-edge (or of the
#                                                  # probe), unstripped, same profile otherwise
#
# cross/probe links fleet-edge's dependency set and runs a Fleet Server's hot paths (TLS, JSON,
# gzip, HTTP heads); see cross/probe/src/main.rs. Build dirs: target/probe-<opt>, target/bloat.
set -euo pipefail
# shellcheck source=cross/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
here=$(dirname "${BASH_SOURCE[0]}")
base_target_dir=$CROSS_TARGET_DIR

speed() {
    local short=$1; shift
    local triple qemu o bin runs
    triple=$(triple_of "$short"); qemu=$(qemu_of "$short")
    local levels=("$@"); [ ${#levels[@]} -gt 0 ] || levels=(s z)
    for o in "${levels[@]}"; do
        CROSS_TARGET_DIR=$base_target_dir/probe-$o${PROBE_FEATURES:+-$PROBE_FEATURES}
        (cd "$CROSS_ROOT" && CARGO_PROFILE_RELEASE_OPT_LEVEL=$o cross_cargo build --release \
            --manifest-path cross/probe/Cargo.toml --target "$triple" \
            ${PROBE_FEATURES:+--features "$PROBE_FEATURES"} \
            -Zbuild-std=std,panic_abort --quiet)
        bin=$CROSS_TARGET_DIR/$triple/release/fleet-edge-probe
        echo "=== probe $short opt-level=$o${PROBE_FEATURES:+ features=$PROBE_FEATURES}: $(stat -c %s "$bin") bytes; $(file -b "$bin" | cut -d, -f1-2,5)"
        if [ -z "$qemu" ]; then runs=5; args=(); else runs=3; args=(--quick); fi
        for _ in $(seq "$runs"); do $qemu "$bin" "${args[@]}"; done |
            awk -F': ' '/ ms/ { split($2, a, " "); if (!($1 in best) || a[1] < best[$1]) best[$1] = a[1];
                                if (!($1 in order)) { order[$1] = ++n; names[n] = $1 } }
                        END { for (i = 1; i <= n; i++) printf "  %-34s %9.1f ms (best of '"$runs"')\n", names[i], best[names[i]] }'
    done
}

bloat() {
    local short=$1 what=${2:-fleet-edge} triple manifest=()
    triple=$(triple_of "$short")
    command -v cargo-bloat >/dev/null || cargo install --locked cargo-bloat
    [ "$what" = probe ] && manifest=(--manifest-path cross/probe/Cargo.toml)
    CROSS_TARGET_DIR=$base_target_dir/bloat
    (cd "$CROSS_ROOT" && CARGO_PROFILE_RELEASE_STRIP=false cross_cargo bloat --release \
        "${manifest[@]}" --target "$triple" -Z build-std=std,panic_abort --crates -n 15)
}

case ${1:-} in
    speed) shift; [ $# -ge 1 ] || die "usage: $0 speed <short> [opt-level...]"; "$here/build.sh" setup; speed "$@" ;;
    bloat) shift; [ $# -ge 1 ] || die "usage: $0 bloat <short> [probe]"; "$here/build.sh" setup; bloat "$@" ;;
    *) die "usage: $0 speed <short> [opt-level...] | bloat <short> [probe]" ;;
esac
