"""Classifies what a fleet-edge server still had allocated when it was killed (heaptrack's
folded stacks, cost = leaked bytes) into the per-agent budget the README reports.

Usage: python3 classify.py live.folded N [--other]
"""

import collections
import re
import sys


def short(frame):
    """`name@file` from a heaptrack frame (v0-mangled names keep their last identifier)."""
    m = re.search(r"\(([^)]*)\)$", frame)
    file = m.group(1) if m else ""
    name = frame[: m.start()].strip() if m else frame
    ids = re.findall(r"\d+([A-Za-z_][A-Za-z0-9_]*)", name)
    return (ids[-1] if ids else name[:40]) + "@" + file


# First match wins; the order puts specific sites before the crates they sit in.
CATEGORIES = [
    ("rustls traffic keys (AES-GCM both ways, ring)",
     lambda s: "encrypter@tls13.rs" in s or "decrypter@tls13.rs" in s),
    ("rustls handshake deframer", lambda s: "default@handshake.rs" in s),
    ("TLS session box (UnbufferedServerConnection + pump)", lambda s: "tls@transport.rs" in s),
    ("rustls tickets and session cache",
     lambda s: "emit_ticket" in s or "limited_cache" in s),
    ("rustls queues and traffic state",
     lambda s: "rustls" in s or "@tls13.rs" in s or "common_state.rs" in s
     or "unbuffered.rs" in s),
    ("redb page cache (bounded, 32 MiB)",
     lambda s: "cached_file.rs" in s or "page_manager.rs" in s),
    ("API-key cache entry", lambda s: "auth_cache.rs" in s),
    ("parked checkin (waiter, output keys)",
     lambda s: "longpoll.rs" in s or "checkin_start@" in s or "park<" in s),
    ("backend job queue (fixed)", lambda s: "sync_channel" in s),
    ("hash tables", lambda s: "reserve_rehash" in s),
    ("deadline heap", lambda s: "deadlines.rs" in s),
    ("connection slab", lambda s: "slab" in s.lower() or "with_capacity<>@lib.rs" in s),
    ("buffer pool", lambda s: "pool.rs" in s),
]


def main():
    path, n = sys.argv[1], int(sys.argv[2])
    totals = collections.Counter()
    other = collections.Counter()
    total = 0
    for line in open(path):
        stack, _, cost = line.rstrip("\n").rpartition(" ")
        cost = int(cost)
        total += cost
        frames = [short(f) for f in stack.split(";")]
        joined = ";".join(frames)
        for name, matches in CATEGORIES:
            if matches(joined):
                totals[name] += cost
                break
        else:
            totals["other"] += cost
            other[" < ".join(frames[-9:][::-1])] += cost
    print(f"live heap {total / 1024:.1f} KiB with {n} agents")
    print("| item | KiB | bytes per agent |")
    print("|---|---|---|")
    for name, cost in totals.most_common():
        print(f"| {name} | {cost / 1024:.1f} | {cost / n:.0f} |")
    if "--other" in sys.argv:
        for site, cost in other.most_common(15):
            print(f"{cost / 1024:8.1f} KiB  {site[:300]}")


if __name__ == "__main__":
    main()
