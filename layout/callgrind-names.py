#!/usr/bin/env python3
"""layout/callgrind-names.py BINARY DUMP...: the symbols of BINARY that ran in each callgrind dump.

Prints "<phase> <symbol>" lines, phase = the dump's position (1, 2, ...), each symbol once, at the
first dump it ran in, in the dump's order. Callgrind must have run with --demangle=no: the link
order file needs the mangled names (they are the ELF section names after `.text.`). Recursion
markers ('2) and unnamed addresses are dropped; so are symbols of other objects (libc, ld.so).
"""
import os
import re
import sys

ENTRY = re.compile(r"^(ob|cob|fn|cfn)=\((\d+)\)(?: (.*))?$")


def ran(path, binary):
    names, objs, cur, seen = {}, {}, None, []
    with open(path, errors="replace") as f:
        for line in f:
            m = ENTRY.match(line.rstrip("\n"))
            if not m:
                continue
            kind, ident, name = m.groups()
            table = objs if kind in ("ob", "cob") else names
            if name is not None:
                table[ident] = name
            if kind == "ob":
                cur = objs.get(ident)
            elif kind == "fn" and cur and os.path.realpath(cur) == binary:
                seen.append(names[ident])
    return seen


def main():
    binary = os.path.realpath(sys.argv[1])
    done = set()
    for phase, dump in enumerate(sys.argv[2:], start=1):
        for name in ran(dump, binary):
            name = re.sub(r"'\d+$", "", name)
            if name.startswith("0x") or name in done:
                continue
            done.add(name)
            print(phase, name)


main()
