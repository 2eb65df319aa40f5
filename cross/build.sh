#!/usr/bin/env bash
# Static, stripped fleet-edge binaries for x86_64, aarch64 and armv7 (hard-float), all musl.
#
#   cross/build.sh x86_64|aarch64|armv7|all     # setup (idempotent) + build + copy + report
#   cross/build.sh setup                        # only install packages / toolchain glue
#
# Output: target/cross/fleet-edge-<short>   (short = x86_64 | aarch64 | armv7)
#   (target/ is $CARGO_TARGET_DIR when set.) Fails unless file(1) says static and stripped and the
#   size is within SIZE_BUDGET bytes (default 4800000).
#
# How (pitfalls P1-P11 in cross/README.md, verified on Debian bookworm amd64): rustup cannot download rust-std
# for other targets here, so every target is built with Debian's own compiler (rustc-web /
# cargo-web, bookworm-security) and std rebuilt from Debian's rust-web-src through -Zbuild-std
# (RUSTC_BOOTSTRAP=1 lets that stable compiler accept -Z flags). Linkers: Debian's musl-gcc
# wrappers (musl-tools, musl-dev:arm64, musl-dev:armhf). Linker flags live in .cargo/config.toml,
# under [target.<triple>] only, so host builds are untouched.
#
# Runs as root (apt-get). Every package and every glue step is in here: CI starts from a fresh
# machine. Installing is skipped entirely when everything is already in place.
set -euo pipefail

UNWIND_DIR=/opt/rust-cross/musl-unwind   # also named in .cargo/config.toml
MIN_RUSTC_MINOR=88                       # rcgen 0.14 needs Rust 1.88
SIZE_BUDGET=${SIZE_BUDGET:-4800000}      # bytes per binary (issue 8 set 4 MB; raised 2026-12-03,
                                         # cross/README.md "Budget"); fails the build
# std built for size (smaller sort/format paths; cross/README.md "Release profile"): what keeps the
# x86_64 binary under the budget since OpAMP. BUILD_STD_FEATURES= (empty) builds std as it comes.
BUILD_STD_FEATURES=${BUILD_STD_FEATURES-optimize_for_size}

# shellcheck source=cross/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---------------------------------------------------------------------------------------------
# setup: Debian packages and toolchain glue, idempotent.

AMD64_PKGS=(rustc-web cargo-web rust-web-src gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf
    libc6-dev-arm64-cross libc6-dev-armhf-cross musl-tools qemu-user-static file binutils curl)
FOREIGN_PKGS=(musl-dev:arm64 musl-dev:armhf)

rustc_web_ok() {   # Debian's rustc is new enough and rust-web-src is exactly its version
    local vr vs minor
    vr=$(dpkg-query -W -f='${Version}' rustc-web 2>/dev/null) || return 1
    vs=$(dpkg-query -W -f='${Version}' rust-web-src 2>/dev/null) || return 1
    [ "$vr" = "$vs" ] || return 1
    minor=$(echo "$vr" | cut -d. -f2)
    [ "$minor" -ge "$MIN_RUSTC_MINOR" ]
}

# std's `unwind` crate links -lunwind statically on musl; -Zbuild-std does not provide the
# libunwind.a that rustup's musl rust-std ships. Use the cross gcc's libgcc_eh.a under that name,
# plus a shim where Debian's gcc 12 (built for glibc >= 2.35) calls glibc's _dl_find_object() and
# only weakly references pthread_* (NULL in a static musl link => SIGSEGV on the first backtrace).
# armv7 (ARM EHABI) libgcc_eh needs no shim. cross/README.md P1.3.
make_musl_unwind() {
    local src=$UNWIND_DIR/dl_find_object.c spec t musl_cc gnu_cc dir eh
    mkdir -p "$UNWIND_DIR"
    cat > "$src" <<'EOF'
/* _dl_find_object() on top of dl_iterate_phdr(), for static musl links using glibc-built libgcc_eh. */
#define _GNU_SOURCE
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

struct dl_find_object {          /* glibc layout on x86_64 / aarch64 */
    unsigned long long dlfo_flags;
    void *dlfo_map_start, *dlfo_map_end, *dlfo_link_map, *dlfo_eh_frame;
    unsigned long long dlfo_reserved[7];
};
struct query { uintptr_t pc; struct dl_find_object *out; int found; };

static int cb(struct dl_phdr_info *info, size_t size, void *data) {
    struct query *q = data;
    const ElfW(Phdr) *eh = 0;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    int hit = 0;
    (void)size;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type == PT_LOAD) {
            uintptr_t s = info->dlpi_addr + p->p_vaddr, e = s + p->p_memsz;
            if (q->pc >= s && q->pc < e) hit = 1;
            if (s < lo) lo = s;
            if (e > hi) hi = e;
        } else if (p->p_type == PT_GNU_EH_FRAME) {
            eh = p;
        }
    }
    if (!hit) return 0;
    memset(q->out, 0, sizeof *q->out);
    q->out->dlfo_map_start = (void *)lo;
    q->out->dlfo_map_end = (void *)hi;
    q->out->dlfo_eh_frame = eh ? (void *)(info->dlpi_addr + eh->p_vaddr) : 0;
    q->found = 1;
    return 1;
}

int _dl_find_object(void *pc, struct dl_find_object *out) {
    struct query q = { (uintptr_t)pc, out, 0 };
    dl_iterate_phdr(cb, &q);
    return q.found ? 0 : -1;
}

/* Strong references so the static link pulls these in (libgcc_eh only references them weakly). */
__attribute__((used)) static void *const force_pthread_symbols[] = {
    (void *)pthread_mutex_lock, (void *)pthread_mutex_unlock, (void *)pthread_once,
    (void *)pthread_key_create, (void *)pthread_getspecific, (void *)pthread_setspecific,
};
EOF
    for spec in "x86_64-unknown-linux-musl x86_64-linux-musl-gcc x86_64-linux-gnu-gcc" \
                "aarch64-unknown-linux-musl aarch64-linux-musl-gcc aarch64-linux-gnu-gcc" \
                "armv7-unknown-linux-musleabihf arm-linux-musleabihf-gcc arm-linux-gnueabihf-gcc"; do
        read -r t musl_cc gnu_cc <<<"$spec"
        dir=$UNWIND_DIR/$t
        mkdir -p "$dir"
        eh=$("$gnu_cc" -print-file-name=libgcc_eh.a)
        [ -f "$eh" ] || die "libgcc_eh.a not found for $gnu_cc"
        cp "$eh" "$dir/libunwind.a.tmp"
        # (no `nm | grep -q` under pipefail: grep -q exits early, nm gets SIGPIPE; cross/README.md P10)
        if nm "$eh" 2>/dev/null | grep ' U _dl_find_object' >/dev/null; then
            "$musl_cc" -O2 -fPIC -c "$src" -o "$dir/dl_find_object.o"
            ar rs "$dir/libunwind.a.tmp" "$dir/dl_find_object.o" 2>/dev/null
        fi
        mv "$dir/libunwind.a.tmp" "$dir/libunwind.a"
    done
    touch "$UNWIND_DIR/.done"
}

have_debian_toolchain() {
    if command -v rustup >/dev/null; then
        # (no grep -q under pipefail: cross/README.md P10)
        rustup toolchain list | grep '^debian' >/dev/null || return 1
    fi
    return 0
}

setup_needed() {
    installed "${AMD64_PKGS[@]}" "${FOREIGN_PKGS[@]}" || return 0
    rustc_web_ok || return 0
    [ -f "$UNWIND_DIR/.done" ] || return 0
    have_debian_toolchain || return 0
    return 1
}

setup() {
    if ! setup_needed; then
        log "setup: already done ($(dpkg-query -W -f='rustc-web ${Version}' rustc-web))"
        return 0
    fi
    [ "$(id -u)" = 0 ] || die "setup must run as root (apt-get install)"
    local s; s=$(date +%s)
    # amd64 packages first, before a foreign architecture can break the index update (P2).
    if ! installed "${AMD64_PKGS[@]}" || ! rustc_web_ok; then
        apt_update
        apt_install "${AMD64_PKGS[@]}"
    fi
    if ! rustc_web_ok; then
        die "need rustc-web >= 1.$MIN_RUSTC_MINOR with the identical rust-web-src; have rustc-web \
$(dpkg-query -W -f='${Version}' rustc-web), rust-web-src $(dpkg-query -W -f='${Version}' rust-web-src) \
(bookworm-security missing from apt sources?)"
    fi
    # musl libc + its gcc wrappers for the ARM targets come from multiarch packages.
    if ! installed "${FOREIGN_PKGS[@]}"; then
        local archs; archs=$(dpkg --print-foreign-architectures)
        if ! grep -qx arm64 <<<"$archs" || ! grep -qx armhf <<<"$archs"; then
            dpkg --add-architecture arm64
            dpkg --add-architecture armhf
            APT_UPDATED=
        fi
        apt_update
        apt_install "${FOREIGN_PKGS[@]}"
    fi
    # Debian's toolchain as `cargo +debian` (it lives in /usr/bin and /usr/lib/rustlib).
    if command -v rustup >/dev/null && ! have_debian_toolchain; then
        rustup toolchain link debian /usr
    fi
    make_musl_unwind
    log "setup: done in $(( $(date +%s) - s ))s ($(dpkg-query -W -f='rustc-web ${Version}' rustc-web))"
}

# ---------------------------------------------------------------------------------------------
# build

build_one() {
    local short=$1 triple bin out s
    triple=$(triple_of "$short")
    s=$(date +%s)
    log "building $short ($triple)"
    (cd "$CROSS_ROOT" && cross_cargo build --release --target "$triple" --bin fleet-edge \
        -Zbuild-std=std,panic_abort ${BUILD_STD_FEATURES:+-Zbuild-std-features=$BUILD_STD_FEATURES})
    bin=$CROSS_TARGET_DIR/$triple/release/fleet-edge
    mkdir -p "$CROSS_OUT_DIR"
    out=$CROSS_OUT_DIR/fleet-edge-$short
    cp "$bin" "$out"
    local desc; desc=$(file -b "$out")
    echo "=== $short: $out"
    echo "size: $(stat -c %s "$out") bytes (built in $(( $(date +%s) - s ))s)"
    echo "file: $desc"
    case $desc in
        *"dynamically linked"*|*interpreter*) die "$out is not static" ;;
        *"statically linked"*|*"static-pie linked"*) ;;
        *) die "$out: cannot tell from file(1) whether it is static" ;;
    esac
    case $desc in
        *"not stripped"*) die "$out is not stripped" ;;
        *stripped*) ;;
        *) die "$out: file(1) does not say stripped" ;;
    esac
    [ "$(stat -c %s "$out")" -le "$SIZE_BUDGET" ] ||
        die "$out is $(stat -c %s "$out") bytes, over the size budget of $SIZE_BUDGET (cross/README.md)"
}

[ $# -ge 1 ] || die "usage: $0 x86_64|aarch64|armv7|all ... | setup"
case $1 in
    setup) setup ;;
    all) setup; for t in x86_64 aarch64 armv7; do build_one "$t"; done ;;
    *) for t in "$@"; do triple_of "$t" >/dev/null; done
       setup; for t in "$@"; do build_one "$t"; done ;;
esac
