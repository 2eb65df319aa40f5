#!/usr/bin/env bash
# Checks what packaging/build.sh made (CI runs it right after): for every .deb its control fields
# and exact file list, the binary inside byte-identical to target/cross; every tarball's contents;
# then the x86_64 package installed with dpkg into a throw-away root (maintainer scripts run
# with DPKG_ROOT, so the system user is created there, not on this machine), the quick start run
# from it in a chroot as that user (TLS /api/status with the generated CA, SIGTERM -> exit 0),
# remove keeping the state dir and the user, purge removing both; systemd-analyze verify and
# security on the installed unit; the README's size table against the built files.
#
#   packaging/check.sh            # as root (chroot, dpkg --root); installs curl/file/systemd if missing
#   PACKAGING_TARGETS="x86_64" packaging/check.sh   # only those packages (x86_64 is always needed)
#
# No container: the binary is static, so the chroot needs nothing but the package's own files.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=cross/lib.sh
. cross/lib.sh
SELF=packaging/check.sh

[ "$(id -u)" = 0 ] || die "run as root (chroot, dpkg --root)"
ensure_pkgs curl file systemd passwd
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
pkgs=$CROSS_TARGET_DIR/packages
work=$(mktemp -d /tmp/fleet-edge-pkgcheck.XXXXXX)
server_pid=
cleanup() {
    [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
s=$(date +%s)

deb_arch_of() {
    case $1 in x86_64) echo amd64 ;; aarch64) echo arm64 ;; armv7) echo armhf ;; esac
}
file_arch_of() {   # what file(1) says about each target's binary
    case $1 in
        x86_64) echo "ELF 64-bit LSB executable, x86-64" ;;
        aarch64) echo "ELF 64-bit LSB executable, ARM aarch64" ;;
        armv7) echo "ELF 32-bit LSB executable, ARM, EABI5" ;;
    esac
}
expect_eq() {   # expect_eq WHAT EXPECTED ACTUAL
    [ "$2" = "$3" ] || die "$1: expected
$2
got
$3"
}

# ---- every .deb and tarball --------------------------------------------------------------------

unit_path=
check_deb() {
    local short=$1 arch deb info contents files
    arch=$(deb_arch_of "$short")
    deb=$pkgs/fleet-edge_${version}-1_$arch.deb
    [ -f "$deb" ] || die "$deb is missing: run packaging/build.sh"
    info=$(dpkg-deb --info "$deb")
    expect_eq "$deb Package" fleet-edge "$(dpkg-deb --field "$deb" Package)"
    expect_eq "$deb Version" "$version-1" "$(dpkg-deb --field "$deb" Version)"
    expect_eq "$deb Architecture" "$arch" "$(dpkg-deb --field "$deb" Architecture)"
    # Static musl binary: no shared library, so no dependency of any kind.
    for field in Depends Pre-Depends Recommends; do
        [ -z "$(dpkg-deb --field "$deb" "$field")" ] || die "$deb has $field: $(dpkg-deb --field "$deb" "$field")"
    done
    for script in postinst postrm prerm conffiles; do
        grep -qE "^ +[0-9]+ bytes, +[0-9]+ lines +\*? *$script( |$)" <<<"$info" ||
            die "$deb control archive lacks $script"
    done
    contents=$(dpkg-deb --contents "$deb")
    # The exact file list (directories aside), with modes and owners.
    files=$(awk '$1 !~ /^d/ { print $1, $2, $6 }' <<<"$contents" | sort -k3)
    unit_path=$(awk '$3 ~ /fleet-edge\.service$/ { print $3 }' <<<"$files")
    case $unit_path in
        ./lib/systemd/system/fleet-edge.service | ./usr/lib/systemd/system/fleet-edge.service) ;;
        *) die "$deb: no systemd unit in lib/systemd/system (got '$unit_path')" ;;
    esac
    expect_eq "$deb contents" "$(sort -k3 <<EOF
-rw------- 0/0 ./etc/default/fleet-edge
-rw-r--r-- 0/0 $unit_path
-rwxr-xr-x 0/0 ./usr/bin/fleet-edge
-rw-r--r-- 0/0 ./usr/share/doc/fleet-edge/README.md
-rw-r--r-- 0/0 ./usr/share/doc/fleet-edge/copyright
EOF
)" "$files"
    dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/default/fleet-edge ||
        die "$deb: /etc/default/fleet-edge is not a conffile"
    dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/bin/fleet-edge > "$work/bin-$short"
    cmp -s "$work/bin-$short" "$CROSS_OUT_DIR/fleet-edge-$short" ||
        die "$deb: usr/bin/fleet-edge is not target/cross/fleet-edge-$short"
    case $(file -b "$work/bin-$short") in
        "$(file_arch_of "$short")"*"statically linked"*) ;;
        *) die "$deb: usr/bin/fleet-edge is $(file -b "$work/bin-$short")" ;;
    esac
    echo "ok: $(basename "$deb"): $arch, no Depends, $(wc -l <<<"$files") files, $(stat -c %s "$deb") bytes"
}

check_tarball() {
    local short=$1 tgz name list
    name=fleet-edge-$version-$short
    tgz=$pkgs/$name.tar.gz
    [ -f "$tgz" ] || die "$tgz is missing: run packaging/build.sh"
    list=$(tar -tzvf "$tgz" | awk '$1 !~ /^d/ { print $1, $2, $6 }')
    expect_eq "$tgz contents" "-rw-r--r-- 0/0 $name/LICENSE
-rw-r--r-- 0/0 $name/README.md
-rwxr-xr-x 0/0 $name/fleet-edge
-rw-r--r-- 0/0 $name/fleet-edge.default
-rw-r--r-- 0/0 $name/fleet-edge.service" "$list"
    tar -xzOf "$tgz" "$name/fleet-edge" | cmp -s - "$CROSS_OUT_DIR/fleet-edge-$short" ||
        die "$tgz: fleet-edge is not target/cross/fleet-edge-$short"
    tar -xzOf "$tgz" "$name/fleet-edge.service" | cmp -s - packaging/fleet-edge.service ||
        die "$tgz: the unit differs from packaging/fleet-edge.service"
    echo "ok: $(basename "$tgz"): 5 files, $(stat -c %s "$tgz") bytes"
}

read -r -a targets <<<"${PACKAGING_TARGETS:-x86_64 aarch64 armv7}"
for t in "${targets[@]}"; do
    check_deb "$t"
    check_tarball "$t"
done

# ---- the x86_64 package in a throw-away root ---------------------------------------------------

root=$work/root
mkdir -p "$root/etc" "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
touch "$root/var/lib/dpkg/status"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
printf 'root:*:19000:0:99999:7:::\n' > "$root/etc/shadow"
printf 'root:*::\n' > "$root/etc/gshadow"
chmod 600 "$root/etc/shadow" "$root/etc/gshadow"
deb=$pkgs/fleet-edge_${version}-1_amd64.deb
in_root() { dpkg --root="$root" --force-script-chrootless --log=/dev/null "$@"; }

in_root -i "$deb" > "$work/dpkg-install.log" 2>&1 || { cat "$work/dpkg-install.log"; die "dpkg -i failed"; }
expect_eq "installed status" "install ok installed" "$(dpkg-query --root="$root" -W -f='${Status}' fleet-edge)"
user_line=$(grep '^fleet-edge:' "$root/etc/passwd") || die "postinst did not create the fleet-edge user"
IFS=: read -r _ _ uid gid _ home shell <<<"$user_line"
expect_eq "fleet-edge home" /var/lib/fleet-edge "$home"
expect_eq "fleet-edge shell" /usr/sbin/nologin "$shell"
[ "$uid" -gt 0 ] && [ "$uid" -lt 1000 ] || die "fleet-edge is not a system user (uid $uid)"
grep -q "^fleet-edge:x:$gid:" "$root/etc/group" || die "postinst did not create the fleet-edge group"
echo "ok: dpkg -i into a throw-away root: user fleet-edge ($uid:$gid, $home, $shell)"

version_line=$(chroot "$root" /usr/bin/fleet-edge --version)
case $version_line in
    "fleet-edge $version"*) echo "ok: chroot fleet-edge --version: $version_line" ;;
    *) die "fleet-edge --version printed '$version_line'" ;;
esac

# The quick start as the service runs it: the fleet-edge user, the state dir as data dir
# (systemd's StateDirectory= creates it 0750 for the user), the settings file's defaults, but a
# free port on 127.0.0.1 (and a free management port) so that CI never collides with anything.
state=$root/var/lib/fleet-edge
install -d -o "$uid" -g "$gid" -m 0750 "$state"
env -i FLEET_EDGE_DATA_DIR=/var/lib/fleet-edge FLEET_SERVER_HOST=127.0.0.1 FLEET_SERVER_PORT=0 \
    FLEET_EDGE_MANAGEMENT_PORT=0 \
    "$(command -v chroot)" --userspec="$uid:$gid" "$root" /usr/bin/fleet-edge > "$work/stdout" 2> "$work/stderr" &
server_pid=$!
deadline=$(( $(date +%s) + 60 ))
until grep -q '^fleet-edge is ready' "$work/stdout"; do
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/stderr"; die "fleet-edge exited before it was ready"; }
    [ "$(date +%s)" -lt "$deadline" ] || { cat "$work/stderr"; die "no ready line within 60 s"; }
    sleep 0.1
done
url=$(sed -n 's/^  Fleet Server URL: *//p' "$work/stdout")
case $url in https://127.0.0.1:[0-9]*) ;; *) die "quick start printed URL '$url'" ;; esac
grep -q '^  Enrollment token: ' "$work/stdout" || die "quick start printed no enrollment token"
status=$(curl -sS --max-time 10 --cacert "$state/certs/ca.crt" "$url/api/status") ||
    die "GET $url/api/status over TLS with the generated CA failed"
grep -q '"status":"HEALTHY"' <<<"$status" || die "/api/status answered $status"
echo "ok: quick start in the chroot as fleet-edge: $url/api/status -> $status"
# The operator's CLI against the running server, from the package's binary.
FLEET_EDGE_DATA_DIR=/var/lib/fleet-edge chroot "$root" /usr/bin/fleet-edge agents > "$work/agents" ||
    die "fleet-edge agents failed"
expect_eq "owner of the data dir's files" "$uid" "$(stat -c %u "$state/admin-token")"
kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=
expect_eq "exit code after SIGTERM" 0 "$rc"
echo "ok: fleet-edge agents answered; data dir files owned by uid $uid; SIGTERM -> exit 0"

# ---- the unit: systemd-analyze on the installed root ----------------------------------------------
# verify resolves the unit's dependencies and commands inside --root: give the throw-away root
# what a systemd machine has there (the host's unit files and /bin/kill for ExecReload), never
# overwriting the package's own files. "Unknown key ... ignoring" is only a warning with exit 0,
# so any output fails the check.
cp -an /lib/systemd/system/. "$(dirname "$root${unit_path#.}")/"
mkdir -p "$root/bin" && cp -n "$(type -P kill)" "$root/bin/kill"
unit=$(basename "$unit_path")
verify=$(systemd-analyze verify --root="$root" "$unit" 2>&1) || die "systemd-analyze verify: $verify"
[ -z "$verify" ] || die "systemd-analyze verify: $verify"
exposure=$(systemd-analyze security --offline=yes --threshold=20 --root="$root" "$unit" 2>&1 | tail -n 1) ||
    die "systemd-analyze security: exposure above 2.0: $exposure"
echo "ok: systemd-analyze verify clean; security: ${exposure#→ }"

# ---- remove keeps the state and the user, purge removes them -------------------------------------
in_root -r fleet-edge > "$work/dpkg-remove.log" 2>&1 || { cat "$work/dpkg-remove.log"; die "dpkg -r failed"; }
[ ! -e "$root/usr/bin/fleet-edge" ] || die "dpkg -r left /usr/bin/fleet-edge"
[ -f "$state/admin-token" ] || die "dpkg -r removed the state dir"
grep -q '^fleet-edge:' "$root/etc/passwd" || die "dpkg -r removed the user"
[ -f "$root/etc/default/fleet-edge" ] || die "dpkg -r removed the conffile"
in_root -P fleet-edge > "$work/dpkg-purge.log" 2>&1 || { cat "$work/dpkg-purge.log"; die "dpkg -P failed"; }
[ ! -e "$state" ] || die "dpkg -P left $state"
! grep -q '^fleet-edge:' "$root/etc/passwd" || die "dpkg -P left the user"
! grep -q '^fleet-edge:' "$root/etc/group" || die "dpkg -P left the group"
[ ! -e "$root/etc/default/fleet-edge" ] || die "dpkg -P left /etc/default/fleet-edge"
echo "ok: dpkg -r kept the state dir, user and settings; dpkg -P removed them"

packaging/sizes.sh check
echo "packaging check: all ok in $(( $(date +%s) - s ))s"
