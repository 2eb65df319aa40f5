#!/usr/bin/env python3
"""layout/callgrind-names.py MAP BASE DUMP...: the functions of a stripped binary that ran, by phase.

MAP is the linker map (`-Map` of lld or GNU ld) of the very binary that was profiled: it names every input
section and its address, so a binary without a symbol table (the shipped, stripped build, whose
symbol hashes are what the link order must name) can be profiled. BASE is the address the binary
was loaded at (its first mapping in /proc/<pid>/maps). Each DUMP is a callgrind output made with
--dump-instr=yes --compress-pos=no, one per phase (1, 2, ...), or for a build of another
architecture the log of `qemu-<arch> -d in_asm` for that phase (every instruction qemu translated,
i.e. all code that ran, at its guest address; layout/profile.sh cuts the log at the phase's end).

Checks the translation before naming anything: callgrind names a stripped binary's functions by
their entry address (`fn=(N) 0x...`), and each entry, less its object's offset (0 or BASE, see
offsets()), must be the start of an input section of the map (a function section). Fewer than
80 % of them at a start means BASE or the map is wrong (not the profiled binary), and it stops
rather than write a profile of whatever code happens to sit at the wrong addresses.

Prints "<phase> <symbol>" for function sections (`.text.<symbol>`, `.text.unlikely.<symbol>`),
and "<phase> file:<object>" for objects whose code is one plain `.text` (ring's assembly), each
once, at the first phase it ran in, in address order.
"""
import bisect
import re
import sys

LLD_LINE = re.compile(r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+\s+(\S.*):\((\.text[^)]*)\)$")


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


OB_LINE = re.compile(r"^(c?ob)=\((\d+)\)(?: (.*))?$")
FN_LINE = re.compile(r"^(c?fn)=\((\d+)\)(?: (.*))?$")
HEX_NAME = re.compile(r"^0x([0-9a-f]+)(?:'\d+)?$")


def read_dump(path):
    """({object id: [cost addresses]}, {object id: {entry addresses of its unnamed functions}}).

    Ids are callgrind's name compression (`ob=(6) /path` once, then `ob=(6)`), per file. A cost
    line belongs to the `ob=` it follows; a function's entry is its name when callgrind had no
    symbol for it (`fn=(N) 0x...`), recorded under the `ob=` it is defined in.
    """
    costs, entries, fn_names, ob = {}, {}, {}, None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("0x"):
                costs.setdefault(ob, []).append(int(line.split(" ", 1)[0], 16))
                continue
            line = line.rstrip("\n")
            m = OB_LINE.match(line)
            if m:
                if m.group(1) == "ob":
                    ob = m.group(2)
                continue
            m = FN_LINE.match(line)
            if m:
                if m.group(3):
                    fn_names[m.group(2)] = m.group(3)
                # "0x<address>", with "'N" after it for a recursion level
                addr = HEX_NAME.match(fn_names.get(m.group(2), ""))
                if m.group(1) == "fn" and addr:
                    entries.setdefault(ob, set()).add(int(addr.group(1), 16))
    return costs, entries


def offsets(secs, base, dumps):
    """Per dump, {object id: what to subtract from its addresses}; exits if they fit no map.

    Callgrind writes an object's addresses relative to its load bias when it made a DebugInfo for
    the mapping (the binary by its path: link-time addresses), and as they were at run time under
    the unknown object `???`, where a stripped PIE's code also lands (valgrind 3.19, measured:
    both in one dump). So each object's offset is chosen, 0 or BASE, by which one puts its
    functions' entries on input-section starts of the map, and most entries must land on one.
    """
    first = {s for s, _, _ in secs}
    lo, hi = secs[0][0], secs[-1][1]
    out, hits, total = [], 0, 0
    for dump in dumps:
        costs, entries = read_dump(dump)
        chosen = {}
        for ob, addrs in entries.items():
            score = {off: sum(1 for a in addrs if a - off in first) for off in {0, base}}
            off = max(score, key=score.get)
            if score[off] == 0:
                continue
            chosen[ob] = off
            hits += score[off]
            total += sum(1 for a in addrs if lo <= a - off < hi)
        out.append((costs, chosen))
    print(f"callgrind-names: base {base:#x}: {hits} of {total} function entries in the map's .text "
          f"start an input section", file=sys.stderr)
    if not total or hits < 0.8 * total:
        sys.exit("callgrind-names: the addresses do not match the map (wrong BASE or map)")
    return out


QEMU_LINE = re.compile(r"^0x([0-9a-f]+):  ")


def qemu_offsets(secs, base, dumps):
    """offsets() for `-d in_asm` logs: the guest's addresses are the link-time ones less BASE.

    The check: the first instruction qemu ran is the ELF entry (`_start`), which starts an input
    section, and nearly every instruction lies inside one (code outside every input section of
    the map means the map is not this binary's).
    """
    out, inside, total, first = [], 0, 0, None
    starts = [s for s, _, _ in secs]
    for dump in dumps:
        addrs = []
        with open(dump, errors="replace") as f:
            for line in f:
                m = QEMU_LINE.match(line)
                if m:
                    addrs.append(int(m.group(1), 16))
        if first is None and addrs:
            first = addrs[0] - base
        for a in addrs:
            i = bisect.bisect_right(starts, a - base) - 1
            inside += i >= 0 and a - base < secs[i][1]
        total += len(addrs)
        out.append(({None: addrs}, {None: base}))
    print(f"callgrind-names: qemu log, base {base:#x}: {inside} of {total} instructions inside an input "
          f"section, entry {first if first is None else hex(first)}", file=sys.stderr)
    if not total or inside < 0.95 * total or first not in set(starts):
        sys.exit("callgrind-names: the addresses do not match the map (wrong BASE or map)")
    return out


def is_qemu_log(path):
    """Whether a dump is a `qemu -d in_asm` log rather than callgrind's output."""
    with open(path, errors="replace") as f:
        return not f.readline().startswith("# callgrind format")


def main():
    secs = sections(sys.argv[1])
    starts = [s for s, _, _ in secs]
    base = int(sys.argv[2], 16)
    dumps = sys.argv[3:]
    by_phase = (qemu_offsets if is_qemu_log(dumps[0]) else offsets)(secs, base, dumps)
    done = set()
    for phase, (costs, chosen) in enumerate(by_phase, start=1):
        hits = set()
        for ob, off in chosen.items():
            for a in costs.get(ob, ()):
                addr = a - off
                i = bisect.bisect_right(starts, addr) - 1
                if i >= 0 and addr < secs[i][1]:
                    hits.add(i)
        for i in sorted(hits):
            entry = secs[i][2]
            if entry not in done:
                done.add(entry)
                print(phase, entry)


main()
