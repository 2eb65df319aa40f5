#!/usr/bin/env bash
# Release packages from the static musl binaries of cross/build.sh, into target/packages/:
#
#   fleet-edge_<version>-1_{amd64,arm64,armhf}.deb    cargo-deb (--no-build: the cross binary as is)
#   fleet-edge-<version>-{x86_64,aarch64,armv7}.tar.gz binary, unit, env file, LICENSE, README.md
#   SIZES.md                                           every binary, .deb and .tar.gz in bytes
#
#   packaging/build.sh            # builds the missing cross binaries first (cross/build.sh)
#   PACKAGING_TARGETS="x86_64" packaging/build.sh
#
# Runs on a fresh Debian bookworm amd64 machine as root: cross/build.sh installs its toolchain,
# and cargo-deb ($CARGO_DEB_VERSION) is installed from crates.io when missing. A binary already in
# target/cross is reused, never rebuilt (CI builds them once in cross/ci.sh). Reproducible:
# timestamps come from the last commit (SOURCE_DATE_EPOCH), owners are root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=cross/lib.sh
. cross/lib.sh
SELF=packaging/build.sh

CARGO_DEB_VERSION=3.8.0
read -r -a targets <<<"${PACKAGING_TARGETS:-x86_64 aarch64 armv7}"
out=$CROSS_TARGET_DIR/packages
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || die "no version in Cargo.toml"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

deb_arch_of() {
    case $1 in
        x86_64) echo amd64 ;;
        aarch64) echo arm64 ;;
        armv7) echo armhf ;;
        *) die "unknown target '$1'" ;;
    esac
}

ensure_cargo_deb() {
    if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
        log "installing cargo-deb $CARGO_DEB_VERSION from crates.io"
        cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked
    fi
}

# The binary cargo-deb packages (target/<triple>/release/fleet-edge, where cross/build.sh's cargo
# put it) must be the one cross/build.sh checked and copied (static, stripped, within budget).
binary_for() {
    local short=$1 triple cross
    triple=$(triple_of "$short")
    cross=$CROSS_OUT_DIR/fleet-edge-$short
    if [ ! -f "$cross" ]; then
        log "$cross is missing: building it"
        cross/build.sh "$short"
    fi
    cmp -s "$cross" "$CROSS_TARGET_DIR/$triple/release/fleet-edge" ||
        die "$CROSS_TARGET_DIR/$triple/release/fleet-edge differs from $cross: run cross/build.sh $short"
}

build_deb() {
    local short=$1 arch deb
    arch=$(deb_arch_of "$short")
    deb=$out/fleet-edge_${version}-1_$arch.deb
    # --no-strip: already stripped (the release profile), and the host strip cannot read ARM.
    cargo deb --no-build --no-strip --target "$(triple_of "$short")" --output "$deb"
    [ "$(dpkg-deb --field "$deb" Architecture)" = "$arch" ] || die "$deb is not $arch"
}

build_tarball() {
    local short=$1 name stage
    name=fleet-edge-$version-$short
    stage=$out/stage/$name
    rm -rf "$stage"
    mkdir -p "$stage"
    install -m 755 "$CROSS_OUT_DIR/fleet-edge-$short" "$stage/fleet-edge"
    install -m 644 packaging/fleet-edge.service packaging/fleet-edge.default LICENSE README.md "$stage/"
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
        -C "$out/stage" -cf - "$name" | gzip -9 -n > "$out/$name.tar.gz"
    rm -rf "$stage"
}

s=$(date +%s)
for t in "${targets[@]}"; do binary_for "$t"; done
ensure_cargo_deb
mkdir -p "$out"
for t in "${targets[@]}"; do
    build_deb "$t"
    build_tarball "$t"
done
rmdir "$out/stage" 2>/dev/null || true
packaging/sizes.sh table > "$out/SIZES.md"
cat "$out/SIZES.md"
log "packages for ${targets[*]} in $out ($(( $(date +%s) - s ))s)"
