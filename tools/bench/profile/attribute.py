#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Charges the instruction counts of tbcount.c to kernel functions and prints
the difference between two boots per unit of extra work.

attribute.py SYSTEM_MAP RUN1 RUN2 EXTRA_RUNS TOP
RUNk.prof: the plugin's "vaddr count" lines; RUNk.log: the guest's output,
"profile: WHAT x N: M each" and the module's lines of /proc/kallsyms.
"""
import bisect
import re
import sys


def symbols(system_map, log):
    """Function start addresses, each with its name, and the end of the text each set of them
    covers: the kernel's (_stext to _etext) and the module's (its extent in /proc/modules).
    Blocks elsewhere are charged to "?"."""
    syms, ranges = [], []
    text = {}
    with open(system_map) as f:
        for line in f:
            addr, kind, name = line.split()[:3]
            if kind in "TtWw":
                syms.append((int(addr, 16), name))
            if name in ("_stext", "_etext"):
                text[name] = int(addr, 16)
    if len(text) != 2:
        sys.exit("attribute: no _stext/_etext in " + system_map)
    ranges.append((text["_stext"], text["_etext"]))
    each = None
    with open(log) as f:
        for line in f:
            m = re.match(r"profile: \S+ x \d+: (\d+) each", line)
            if m:
                each = int(m.group(1))
            m = re.match(r"([0-9a-f]{16}) [tT] (\S+)\s+\[procmap_query\]", line)
            if m:
                if int(m.group(1), 16) == 0:
                    sys.exit("attribute: the module's addresses are hidden (kptr_restrict)")
                syms.append((int(m.group(1), 16), m.group(2) + " [m]"))
            m = re.match(r"procmap_query (\d+) .* (0x[0-9a-f]+)$", line.strip())
            if m:
                base = int(m.group(2), 16)
                ranges.append((base, base + int(m.group(1))))
    syms.sort()
    return syms, ranges, each


def charge(prof, syms, ranges):
    addrs = [a for a, _ in syms]
    per = {}
    with open(prof) as f:
        for line in f:
            vaddr, count = line.split()
            vaddr = int(vaddr, 16)
            i = bisect.bisect_right(addrs, vaddr) - 1
            inside = any(lo <= vaddr < hi for lo, hi in ranges)
            name = syms[i][1] if i >= 0 and inside else "?"
            per[name] = per.get(name, 0) + int(count)
    return per


def main():
    system_map, run1, run2, extra, top = sys.argv[1:6]
    syms1, ranges1, each = symbols(system_map, run1 + ".log")
    syms2, ranges2, each2 = symbols(system_map, run2 + ".log")
    if each is None or each != each2 or each == 0 or int(extra) <= 0:
        sys.exit(f"attribute: the runs did not finish alike ({each}, {each2}, {extra} more)")
    p1 = charge(run1 + ".prof", syms1, ranges1)
    p2 = charge(run2 + ".prof", syms2, ranges2)
    units = int(extra) * each
    diff = {k: p2.get(k, 0) - p1.get(k, 0) for k in set(p1) | set(p2)}
    total = sum(diff.values())
    with open(run1 + ".log") as f:
        what = f.read()
    m = re.search(r"profile: (\S+)", what)
    print(f"\n{m.group(1) if m else '?'}: kernel instructions per unit "
          f"({int(extra)} runs x {each}): {total / units:.1f}")
    for name, d in sorted(diff.items(), key=lambda kv: -abs(kv[1]))[: int(top)]:
        print(f"{d / units:9.1f}  {name}")


main()
