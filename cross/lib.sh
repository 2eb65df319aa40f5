# Shared by the cross/*.sh scripts (sourced, not run). See cross/README.md.
# shellcheck shell=bash

CROSS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CROSS_TARGET_DIR=${CARGO_TARGET_DIR:-$CROSS_ROOT/target}
# shellcheck disable=SC2034  # used by the scripts that source this file
CROSS_OUT_DIR=$CROSS_TARGET_DIR/cross          # cross/build.sh copies binaries here
SELF=cross/$(basename "$0")

die() { echo "$SELF: $*" >&2; exit 1; }
log() { echo "$SELF: $*" >&2; }

# short name -> target triple (musl everywhere: smallest, no glibc/NSS caveats; cross/README.md)
triple_of() {
    case $1 in
        x86_64)  echo x86_64-unknown-linux-musl ;;
        aarch64) echo aarch64-unknown-linux-musl ;;
        armv7)   echo armv7-unknown-linux-musleabihf ;;
        *) die "unknown target '$1' (want x86_64, aarch64, armv7 or all)" ;;
    esac
}

# short name -> how to run its binaries on this amd64 machine (binfmt_misc is not registered
# here, cross/README.md P6, so qemu-user is called explicitly). Empty = native.
qemu_of() {
    case $1 in
        x86_64)  echo "" ;;
        aarch64) echo qemu-aarch64-static ;;
        armv7)   echo qemu-arm-static ;;
        *) die "unknown target '$1'" ;;
    esac
}

# Debian's cargo/rustc 1.96 (linked into rustup as toolchain `debian` by `cross/build.sh setup`)
# with -Z flags allowed, for the cross targets. RUSTFLAGS would *replace* the
# [target.<triple>].rustflags of .cargo/config.toml (cross/README.md P1.4), so it is dropped.
cross_cargo() {
    (
        unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
        export RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$CROSS_TARGET_DIR"
        if command -v rustup >/dev/null; then
            exec cargo +debian "$@"
        else   # Debian's cargo would otherwise run whatever `rustc` is first in PATH
            RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc exec /usr/bin/cargo "$@"
        fi
    )
}

# --- Debian packages ----------------------------------------------------------------------------

installed() {   # all named packages are installed
    local p s
    for p in "$@"; do
        s=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) || return 1
        [ "$s" = installed ] || return 1
    done
}

APT_UPDATED=
apt_update() {
    [ -z "$APT_UPDATED" ] || return 0
    local apt=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
    if ! "${apt[@]}" update; then
        # cross/README.md P2: a broken foreign-arch index of bookworm-security (armhf, seen on this
        # mirror) makes apt drop *all* of that suite's new indexes, hiding rustc-web 1.96.
        # Nothing here needs armhf security packages: limit that suite to amd64 + arm64, retry.
        local f=/etc/apt/sources.list.d/debian.sources
        [ -f "$f" ] || die "apt-get update failed"
        log "apt-get update failed; restricting bookworm-security to amd64 arm64 in $f"
        awk 'BEGIN { RS = ""; ORS = "\n\n" }
             { sec = 0; arch = 0; n = split($0, l, "\n")
               for (i = 1; i <= n; i++) {
                   if (l[i] ~ /^Suites:.*-security/) sec = 1
                   if (l[i] ~ /^Architectures:/) arch = 1 }
               if (sec && !arch) $0 = $0 "\nArchitectures: amd64 arm64"
               print }' "$f" > "$f.new"
        mv "$f.new" "$f"
        "${apt[@]}" update || die "apt-get update still fails"
    fi
    APT_UPDATED=1
}

apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3 \
        install -y --no-install-recommends "$@"
}

# Install those of the named packages that are missing (apt-get update once, only if needed).
ensure_pkgs() {
    local p missing=()
    for p in "$@"; do installed "$p" || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "need root to install: ${missing[*]}"
    apt_update
    apt_install "${missing[@]}"
}
