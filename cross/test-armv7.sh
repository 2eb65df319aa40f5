#!/usr/bin/env bash
# The library's unit tests on 32-bit armv7 (hard-float, musl) under qemu-user: catches usize
# truncation of lengths, seq_nos and counters that 64-bit hosts never see.
#
#   cross/test-armv7.sh                 # all unit tests of the library
#   cross/test-armv7.sh -- some_filter  # arguments after -- go to the test binary
#
# Same toolchain as cross/build.sh (Debian rustc-web + -Zbuild-std, RUSTC_BOOTSTRAP=1); cargo
# runs the test binary through the `runner` of .cargo/config.toml (qemu-arm-static). Debug
# profile, so panics unwind and #[should_panic] works: -Zbuild-std (default set) includes
# panic_unwind, and cargo adds the `test` crate itself.
set -euo pipefail
# shellcheck source=cross/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$(dirname "${BASH_SOURCE[0]}")/build.sh" setup
triple=$(triple_of armv7)
cd "$CROSS_ROOT"
s=$(date +%s)
# One test is skipped here, and only here: the embedded store's kill -9 test re-executes the test
# binary itself as the child to kill, and an emulated armv7 process cannot exec an armv7 binary
# without binfmt_misc (qemu-user answers "Exec format error"). Crash semantics do not depend on
# the word size; the test runs natively in every `cargo test`.
if [ "$#" -eq 0 ]; then
    set -- -- --skip kill_9_during_a_write_storm_loses_no_acknowledged_write
fi
cross_cargo test --lib --target "$triple" -Zbuild-std "$@"
log "armv7 unit tests done in $(( $(date +%s) - s ))s"
