#!/usr/bin/env bash
# benches/heap/idle-rss.sh BINARY [SECS]: starts the server on loopback in a fresh data dir (first start
# creates certs and store; it is stopped and started again), waits SECS (default 10; 30 under
# QEMU) after the second start, prints RSS fields and the largest mappings, then stops it (SIGTERM
# by pid). IDLE_RSS_SECTIONS=1 also prints the binary's resident kB per ELF section (resident.py,
# root).
#
# A binary of another architecture (aarch64, armv7: ELF e_machine other than the host's) runs
# under qemu-user, and then only the guest's memory is counted. Why: the qemu process's own RSS
# holds qemu's binary, its heap, the translated code buffer and per-page tables, megabytes that
# say nothing about fleet-edge on an ARM board. So qemu is given a fixed guest base and a
# reserved guest address space (-B GUEST_BASE -R RESERVED_VA): every guest mapping (the binary's
# segments, which qemu maps from the file, the brk heap, the guest's mmaps, thread stacks) lies
# in the host range [GUEST_BASE, GUEST_BASE + RESERVED_VA), and qemu's own memory outside it.
# The figures are then summed from /proc/<qemu pid>/smaps over the mappings inside that range:
# Rss (as VmRSS), Anonymous (as RssAnon; copy-on-written file pages included, as the kernel
# counts them) and the rest as RssFile. Host and guest pages are both 4 KiB and qemu touches a
# guest page when it translates code from it or the guest reads or writes it, so the host
# kernel's fault-around of file pages (64 KiB) applies as a native ARM kernel's would.
# Threads is qemu's (one host thread per guest thread, plus qemu's RCU thread).
set -u
bin="$1"
dir=$(mktemp -d /tmp/mem-idle.XXXX)
host=$(uname -m)
# e_machine, 2 bytes at offset 18 of the ELF header: 62 x86-64, 183 AArch64, 40 ARM
machine=$(od -An -tu2 -j18 -N2 "$bin" | tr -d ' ')
qemu=() guest_base=0 reserved_va=0
case "$machine:$host" in
  62:x86_64 | 183:aarch64 | 40:arm*) ;;
  183:*) qemu=(qemu-aarch64-static) ;;
  40:*) qemu=(qemu-arm-static) ;;
  *) echo "idle-rss.sh: unknown ELF machine $machine" >&2; exit 1 ;;
esac
if [ ${#qemu[@]} -gt 0 ]; then
  command -v "${qemu[0]}" >/dev/null || { echo "idle-rss.sh: ${qemu[0]} missing (apt-get install qemu-user-static)" >&2; exit 1; }
  # 16 TiB up: far from the host's mappings (qemu's binary low, its heap and libraries near
  # 0x7f..); 8 GiB is room for everything a 64-bit guest maps; a 32-bit ARM guest gets its whole
  # 4 GiB but the last page (qemu 7.2's limit), which must include the commpage at 0xffff0000.
  guest_base=$((0x100000000000))
  if [ "$machine" = 40 ]; then reserved_va=$((0xfffff000)); else reserved_va=$((0x200000000)); fi
  qemu+=(-B "$(printf '0x%x' "$guest_base")" -R "$(printf '0x%x' "$reserved_va")")
fi
secs="${2:-$([ ${#qemu[@]} -gt 0 ] && echo 30 || echo 10)}"
for round in 1 2; do
  "${qemu[@]}" "$bin" --fleet-server-host 127.0.0.1 --fleet-server-port 0 --management-port 0 --data-dir "$dir" --log-level warn >/dev/null 2>&1 &
  pid=$!
  ( sleep $((secs + 60)); kill "$pid" 2>/dev/null ) &
  watchdog=$!
  sleep "$secs"
  if [ "$round" = 2 ]; then
    if [ ${#qemu[@]} -gt 0 ]; then
      # the guest's mappings only: those inside [guest_base, guest_base + reserved_va)
      awk -v lo="$guest_base" -v hi="$((guest_base + reserved_va))" -v threads="$(grep '^Threads' "/proc/$pid/status" | tr -s ' \t' ' ')" '
        function hex(s,  i, n, c) { n = 0; s = tolower(s); for (i = 1; i <= length(s); i++) { c = index("0123456789abcdef", substr(s, i, 1)) - 1; n = n * 16 + c } return n }
        /^[0-9a-f]+-[0-9a-f]+ / { split($1, a, "-"); inside = hex(a[1]) >= lo && hex(a[2]) <= hi; name = $6; if (name == "") name = "[guest anon]" }
        inside && /^Rss:/ { rss += $2; r[name] += $2 }
        inside && /^Anonymous:/ { anon += $2 }
        END {
          printf "VmRSS: %d kB RssAnon: %d kB RssFile: %d kB %s (guest memory only, qemu-user)\n", rss, anon, rss - anon, threads
          for (n in r) if (r[n] >= 50) printf "%6d kB %s\n", r[n], n
        }' "/proc/$pid/smaps" | { IFS= read -r first; echo "$first"; sort -rn | head -8; }
      echo "(the whole qemu process: $(grep -E '^VmRSS' "/proc/$pid/status" | tr -s ' \t' ' '))"
    else
      grep -E '^(VmRSS|RssAnon|RssFile|Threads)' "/proc/$pid/status" | tr -s ' \t' ' ' | tr '\n' ' '; echo
      awk '/^[0-9a-f]+-/{name=$6; if (name=="") name="[anon]"} /^Rss:/{r[name]+=$2} END{for(n in r) if (r[n]>=50) printf "%6d kB %s\n", r[n], n}' "/proc/$pid/smaps" | sort -rn | head -8
    fi
    if [ "${IDLE_RSS_SECTIONS:-0}" = 1 ]; then python3 "$(dirname "$0")/resident.py" "$pid" "$bin"; fi
  fi
  kill "$pid"; wait "$pid" 2>/dev/null
  kill "$watchdog" 2>/dev/null; wait "$watchdog" 2>/dev/null
done
rm -rf "$dir"
