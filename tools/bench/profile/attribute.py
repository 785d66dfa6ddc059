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
    syms = []
    for line in open(system_map):
        addr, kind, name = line.split()[:3]
        if kind in "TtWw":
            syms.append((int(addr, 16), name))
    each = None
    for line in open(log):
        m = re.match(r"profile: \S+ x \d+: (\d+) each", line)
        if m:
            each = int(m.group(1))
        m = re.match(r"([0-9a-f]{16}) [tT] (\S+)\s+\[procmap_query\]", line)
        if m:
            syms.append((int(m.group(1), 16), m.group(2) + " [m]"))
    syms.sort()
    return syms, each


def charge(prof, syms):
    addrs = [a for a, _ in syms]
    per = {}
    for line in open(prof):
        vaddr, count = line.split()
        i = bisect.bisect_right(addrs, int(vaddr, 16)) - 1
        name = syms[i][1] if i >= 0 else "?"
        per[name] = per.get(name, 0) + int(count)
    return per


def main():
    system_map, run1, run2, extra, top = sys.argv[1:6]
    syms1, each = symbols(system_map, run1 + ".log")
    syms2, each2 = symbols(system_map, run2 + ".log")
    if each is None or each != each2:
        sys.exit(f"attribute: the runs did not finish alike ({each}, {each2})")
    p1, p2 = charge(run1 + ".prof", syms1), charge(run2 + ".prof", syms2)
    units = int(extra) * each
    diff = {k: p2.get(k, 0) - p1.get(k, 0) for k in set(p1) | set(p2)}
    total = sum(diff.values())
    what = open(run1 + ".log").read()
    m = re.search(r"profile: (\S+)", what)
    print(f"\n{m.group(1) if m else '?'}: kernel instructions per unit "
          f"({int(extra)} runs x {each}): {total / units:.1f}")
    for name, d in sorted(diff.items(), key=lambda kv: -abs(kv[1]))[: int(top)]:
        print(f"{d / units:9.1f}  {name}")


main()
