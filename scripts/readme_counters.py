#!/usr/bin/env python3
"""Rewrites README.md's counter tables from the components' X-macro lists.

Run after adding or renaming a counter: python3 scripts/readme_counters.py
(the unit test ExportedCountersTest checks that every counter is in README.md).
"""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
GROUPS = [  # title, header, list macro, exported prefix
    ("Listeners", "lib/server/counters.h", "NODEDNS_SERVER_COUNTERS", ""),
    ("Resolver", "lib/resolver/counters.h", "NODEDNS_RESOLVER_COUNTERS", ""),
    ("Upstream", "lib/upstream/counters.h", "NODEDNS_UPSTREAM_COUNTERS", ""),
    ("Cache", "lib/cache/cache.h", "NODEDNS_CACHE_COUNTERS", "cache_"),
]
BEGIN, END = "<!-- counters: begin (scripts/readme_counters.py) -->", "<!-- counters: end -->"


def entries(path, macro):
    text = (ROOT / path).read_text()
    start = text.index("#define " + macro)
    block = text[start:text.index("\n\n", start)]
    return re.findall(r'X\((\w+),\s*"((?:[^"\\]|\\.)*)"\)', block)


def tables():
    out = []
    for title, path, macro, prefix in GROUPS:
        out += ["", f"**{title}** ([`{path}`]({path}))", "", "| Counter | Meaning |", "| --- | --- |"]
        out += [f"| `{prefix}{name}` | {help_text} |" for name, help_text in entries(path, macro)]
    return "\n".join(out)


readme = ROOT / "README.md"
text = readme.read_text()
start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
readme.write_text(text[:start] + tables() + "\n\n" + text[end:])
