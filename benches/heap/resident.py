#!/usr/bin/env python3
"""benches/heap/resident.py PID BINARY: how much of each ELF section of BINARY is resident in the
running process PID (kB resident of kB mapped), from /proc/PID/pagemap (root: the present bit).
Shows where a binary's RssFile goes, e.g. whether the link order kept idle code together
(layout/, README "Idle RSS"). Needs readelf (binutils).
"""
import collections
import os
import struct
import subprocess
import sys


def sections(binary):
    """(file offset start, end, name) of the sections with file contents."""
    out = []
    text = subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True, check=True).stdout
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("[") or "]" not in line:
            continue
        parts = line[line.index("]") + 1 :].split()
        if len(parts) < 6 or parts[0] == "Name" or parts[1] == "NOBITS":
            continue
        off, size = int(parts[3], 16), int(parts[4], 16)
        if size:
            out.append((off, off + size, parts[0]))
    return out


def main():
    pid, binary = sys.argv[1], os.path.realpath(sys.argv[2])
    secs = sections(binary)
    resident, mapped = collections.Counter(), collections.Counter()
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap, open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            f = line.split()
            if len(f) < 6 or os.path.realpath(f[5]) != binary:
                continue
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            for i in range((hi - lo) // 4096):
                pagemap.seek((lo // 4096 + i) * 8)
                present = struct.unpack("<Q", pagemap.read(8))[0] >> 63
                page = int(f[2], 16) + i * 4096
                # a page belongs to the section that covers most of it (first match is fine)
                name = next((n for a, b, n in secs if a <= page + 2048 < b or a <= page < b), "?")
                mapped[name] += 4
                resident[name] += 4 * present
    for name in sorted(mapped, key=lambda n: -mapped[n]):
        print(f"{name:20} {resident[name]:6} of {mapped[name]:6} kB")
    print(f"{'total':20} {sum(resident.values()):6} of {sum(mapped.values()):6} kB")


main()
