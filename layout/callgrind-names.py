#!/usr/bin/env python3
"""layout/callgrind-names.py MAP BASE DUMP...: the functions of a stripped binary that ran, by phase.

MAP is the linker map (`-Map` of lld or GNU ld) of the very binary that was profiled: it names every input
section and its address, so a binary without a symbol table (the shipped, stripped build, whose
symbol hashes are what the link order must name) can be profiled. BASE is the address the binary
was loaded at (its first mapping in /proc/<pid>/maps). Each DUMP is a callgrind output made with
--dump-instr=yes --compress-pos=no, one per phase (1, 2, ...).

Prints "<phase> <symbol>" for function sections (`.text.<symbol>`, `.text.unlikely.<symbol>`),
and "<phase> file:<object>" for objects whose code is one plain `.text` (ring's assembly), each
once, at the first phase it ran in, in address order.
"""
import bisect
import re
import sys

LLD_LINE = re.compile(r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+\s+(\S.*):\((\.text[^)]*)\)$")
COST_LINE = re.compile(r"^(0x[0-9a-f]+) ")


# GNU ld (the musl cross builds): " .text.<name> 0xADDR 0xSIZE file", or the name alone on its
# line when it is long and the rest on the next.
GNU_LINE = re.compile(r"^ (\.text\S*)(?:\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*))?$")
GNU_REST = re.compile(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")


def map_entries(path):
    """(start, size, object, section) of every input section in an lld or GNU ld map."""
    pending = None
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = LLD_LINE.match(line)
            if m:
                yield int(m.group(1), 16), int(m.group(2), 16), m.group(3), m.group(4)
                continue
            m = GNU_LINE.match(line)
            if m and m.group(2):
                yield int(m.group(2), 16), int(m.group(3), 16), m.group(4), m.group(1)
            elif m:
                pending = m.group(1)
                continue
            elif pending:
                r = GNU_REST.match(line)
                if r:
                    yield int(r.group(1), 16), int(r.group(2), 16), r.group(3), pending
            pending = None


def sections(path):
    """Sorted (start, end, entry) of the executable input sections in a linker map."""
    out = []
    for start, size, obj, sec in map_entries(path):
            if not sec.startswith(".text"):
                continue
            if size == 0:
                continue
            for prefix in (".text.unlikely.", ".text."):
                if sec.startswith(prefix):
                    entry = sec[len(prefix):]
                    break
            else:
                # one .text for a whole object: name the object without its path and cc's hash
                member = re.split(r"[/:(]", obj.rstrip(")"))[-1]
                entry = "file:" + re.sub(r"^[0-9a-f]{16}-", "", member)
            out.append((start, start + size, entry))
    out.sort()
    return out


def main():
    secs = sections(sys.argv[1])
    starts = [s for s, _, _ in secs]
    base = int(sys.argv[2], 16)
    done = set()
    for phase, dump in enumerate(sys.argv[3:], start=1):
        hits = set()
        with open(dump, errors="replace") as f:
            for line in f:
                m = COST_LINE.match(line)
                if not m:
                    continue
                addr = int(m.group(1), 16) - base
                i = bisect.bisect_right(starts, addr) - 1
                if i >= 0 and addr < secs[i][1]:
                    hits.add(i)
        for i in sorted(hits):
            entry = secs[i][2]
            if entry not in done:
                done.add(entry)
                print(phase, entry)


main()
