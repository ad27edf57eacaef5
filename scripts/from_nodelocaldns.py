#!/usr/bin/python3
"""Prints the nodedns TOML equivalent of a NodeLocal DNSCache Corefile.

Usage: scripts/from_nodelocaldns.py [options] COREFILE|-  > nodedns.toml

COREFILE is the Corefile of the usual NodeLocal DNSCache manifest
(kubernetes/kubernetes cluster/addons/dns/nodelocaldns/nodelocaldns.yaml), or
that manifest itself (its ConfigMap's "Corefile: |" block is read). The
__PILLAR__ placeholders may be left in: node-cache's flags are given here.

Every Corefile directive appears in the output: mapped to a key, mapped
approximately (with a comment saying how), or as a "# not mapped:" comment
(unknown directives are also reported on stderr). Invalid input: a message on
stderr and exit status 2. Standard library only.
"""
import argparse
import ipaddress
import re
import sys

DEFAULT_PORT = 53
# CoreDNS cache plugin defaults (plugin/cache/setup.go).
CACHE_CAPACITY = 9984
SUCCESS_MAX_TTL = 3600
DENIAL_MAX_TTL = 1800
CACHE_MIN_TTL = 5
SERVE_STALE_DEFAULT_S = 3600
MAX_STALE_LIMIT_S = 7 * 86400  # config.cc: [[zone]] max_stale
NODEDNS_DEFAULT_MAX_STALE = 86400


class InputError(Exception):
    """A Corefile or flag problem reported to the user (exit status 2)."""


class Directive:
    def __init__(self, name, args, line, block=None):
        self.name, self.args, self.line, self.block = name, args, line, block

    def text(self):
        return " ".join([self.name] + self.args) + (" { ... }" if self.block is not None else "")


class ServerBlock:
    def __init__(self, keys, line):
        self.keys, self.line, self.directives = keys, line, []


# --- Reading ----------------------------------------------------------------


def extract_corefile(text):
    """The Corefile: the text itself, or the "Corefile: |" block of a manifest."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)Corefile:\s*\|[-+]?\s*$", line)
        if not m:
            continue
        indent = len(m.group(1))
        body, first = [], None
        for nxt in lines[i + 1:]:
            if nxt.strip() == "":
                body.append("")
                continue
            cur = len(nxt) - len(nxt.lstrip(" "))
            if cur <= indent:
                break
            if first is None:
                first = cur
            body.append(nxt[min(first, cur):])
        return "\n".join(body) + "\n", i + 1
    return text, 0


def tokenize(text, line_offset=0):
    """Lines of tokens, as (line number, [tokens]); comments and quotes handled."""
    out = []
    for n, raw in enumerate(text.splitlines(), start=1 + line_offset):
        tokens, cur, quote, i = [], "", None, 0
        have = False
        while i < len(raw):
            ch = raw[i]
            if quote:
                if ch == "\\" and i + 1 < len(raw):
                    cur += raw[i + 1]
                    i += 2
                    continue
                if ch == quote:
                    quote = None
                else:
                    cur += ch
            elif ch in "\"`":
                quote, have = ch, True
            elif ch == "#" and not have:
                break
            elif ch.isspace():
                if have:
                    tokens.append(cur)
                cur, have = "", False
            else:
                cur += ch
                have = True
            i += 1
        if quote:
            raise InputError(f"line {n}: unterminated quote")
        if have:
            tokens.append(cur)
        if tokens:
            out.append((n, tokens))
    return out


def parse_corefile(text, line_offset=0):
    blocks = []
    lines = tokenize(text, line_offset)
    i = 0

    def read_block(start_line):
        """Directives up to the matching "}"; returns (directives, next index)."""
        nonlocal i
        items = []
        while i < len(lines):
            n, toks = lines[i]
            i += 1
            if toks == ["}"]:
                return items, True
            if "}" in toks[1:] or toks[0] == "}":
                raise InputError(f"line {n}: '}}' must be alone on its line")
            if toks[-1] == "{":
                if "{" in toks[:-1]:
                    raise InputError(f"line {n}: more than one '{{' on a line")
                if len(toks) == 1:
                    raise InputError(f"line {n}: '{{' without a directive")
                sub, closed = read_block(n)
                if not closed:
                    raise InputError(f"line {n}: '{{' of '{toks[0]}' is never closed (unbalanced braces)")
                items.append(Directive(toks[0], toks[1:-1], n, sub))
            elif "{" in toks:
                raise InputError(f"line {n}: '{{' must end its line")
            else:
                items.append(Directive(toks[0], toks[1:], n))
        return items, False

    while i < len(lines):
        n, toks = lines[i]
        i += 1
        if "}" in toks:
            raise InputError(f"line {n}: '}}' without a matching '{{' (unbalanced braces)")
        if toks[-1] != "{" or len(toks) == 1:
            raise InputError(f"line {n}: expected a server block such as 'cluster.local:53 {{', got '{' '.join(toks)}'")
        keys = [k for t in toks[:-1] for k in t.split(",") if k]
        block = ServerBlock(keys, n)
        directives, closed = read_block(n)
        if not closed:
            raise InputError(f"line {n}: server block '{' '.join(keys)}' is never closed (unbalanced braces)")
        for d in directives:
            if d.block is not None and any(s.block is not None for s in d.block):
                inner = next(s for s in d.block if s.block is not None)
                raise InputError(f"line {inner.line}: blocks nested more than two deep are not Corefile syntax")
        block.directives = directives
        blocks.append(block)
    if not blocks:
        raise InputError("no server block found (is this a Corefile?)")
    return blocks


# --- Values -----------------------------------------------------------------


def parse_duration(s, where):
    """Go duration ("30s", "1h30m", "5m") in whole seconds."""
    if re.fullmatch(r"\d+", s):
        return int(s)
    m = re.fullmatch(r"((?:\d+(?:\.\d+)?(?:h|m|s|ms))+)", s)
    if not m:
        raise InputError(f"{where}: '{s}' is not a duration such as 30s, 5m or 1h")
    total = 0.0
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", s):
        total += float(num) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return int(total)


def parse_int(s, where, lo=0):
    if not re.fullmatch(r"\d+", s) or int(s) < lo:
        raise InputError(f"{where}: '{s}' is not an integer of at least {lo}")
    return int(s)


def split_host_port(s):
    """"a.b.c.d", "a.b.c.d:53", "[v6]:53", "v6" -> (host, port or None)."""
    if s.startswith("["):
        m = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", s)
        if not m or (m.group(2) and not 0 < int(m.group(2)) < 65536):
            raise InputError(f"'{s}' is not an address such as [2001:db8::1]:53")
        return m.group(1), int(m.group(2)) if m.group(2) else None
    if s.count(":") == 1:
        host, port = s.split(":")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise InputError(f"'{s}': '{port}' is not a port number")
        return host, int(port)
    return s, None


def fmt_addr(host, port):
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]:{port}"
    except ValueError:
        pass
    return f"{host}:{port}"


def check_ip(host, where):
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise InputError(f"{where}: '{host}' is not an IP address") from None


def toml_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def toml_list(items):
    return "[" + ", ".join(toml_str(x) for x in items) + "]"


def zone_key(key, where):
    """A server block key ("cluster.local:53", "dns://.:53") -> (zone, port)."""
    k = key
    for scheme in ("dns://",):
        if k.startswith(scheme):
            k = k[len(scheme):]
    if "://" in k:
        raise InputError(f"{where}: server block '{key}': only plain DNS (dns://) listeners can be mapped")
    port = DEFAULT_PORT
    if ":" in k:
        k, p = k.rsplit(":", 1)
        port = parse_int(p, where, 1)
    if k == "":
        k = "."
    return k, port


def norm_zone(z):
    return "." if z in (".", "") else z.rstrip(".").lower()


# --- Conversion ---------------------------------------------------------------


class Converter:
    def __init__(self, opts):
        self.opts = opts
        self.localips = [x for x in (opts.localip or "").split(",") if x]
        for ip in self.localips:
            check_ip(ip, "--localip")
        self.local_dns = self.localips[0] if self.localips else "169.254.20.10"
        self.dns_server = opts.dns_server or (self.localips[1] if len(self.localips) > 1 else None)
        if self.dns_server:
            check_ip(self.dns_server, "--dns-server")
        if opts.cluster_dns:
            check_ip(opts.cluster_dns, "--cluster-dns")
        self.notes = []          # comments for the header
        self.listen = []         # "ADDR:PORT"
        self.zones = []          # dicts: name, servers, max_stale, comments
        self.cache = {"success_ttl": [], "denial_ttl": [], "min_ttl": [], "capacity": 0,
                      "prefetch": [], "comments": []}
        self.metrics = None
        self.metrics_comments = []
        self.health = []
        self.loop_noted = False
        self.upstream = {}
        self.upstream_comments = []
        self.log = {}
        self.log_comments = []
        self.stderr = []

    def note_unmapped(self, where, text, why):
        self.notes.append(f"# not mapped: {text} (line {where}): {why}")
        self.stderr.append(f"line {where}: '{text}' not mapped: {why}")

    def subst(self, tok, line):
        """Placeholders node-cache (or the manifest's sed) fills in."""
        tok = tok.replace("__PILLAR__DNS__DOMAIN__", self.opts.domain)
        if "__PILLAR__LOCAL__DNS__" in tok:
            return tok.replace("__PILLAR__LOCAL__DNS__", self.local_dns)
        if "__PILLAR__DNS__SERVER__" in tok:
            return None if self.dns_server is None else tok.replace("__PILLAR__DNS__SERVER__", self.dns_server)
        if "__PILLAR__CLUSTER__DNS__" in tok:
            if not self.opts.cluster_dns:
                raise InputError(
                    f"line {line}: the Corefile forwards to __PILLAR__CLUSTER__DNS__, which node-cache fills in with "
                    f"the ClusterIP of the -upstreamsvc service ({self.opts.upstreamsvc}); give it with --cluster-dns IP")
            return tok.replace("__PILLAR__CLUSTER__DNS__", self.opts.cluster_dns)
        if "__PILLAR__" in tok and tok != "__PILLAR__UPSTREAM__SERVERS__":
            raise InputError(f"line {line}: unknown placeholder '{tok}'")
        return tok

    def convert(self, blocks):
        seen_zones = {}
        for b in blocks:
            zones = []
            for key in b.keys:
                z, port = zone_key(self.subst(key, b.line) or key, f"line {b.line}")
                zones.append((norm_zone(z), port))
            ports = {p for _, p in zones}
            binds, have_bind, forwards = [], False, []
            for d in b.directives:
                handler = getattr(self, "d_" + d.name.replace("-", "_"), None)
                if d.name == "bind":
                    have_bind = True
                    for a in d.args:
                        if a in ("{", "except"):
                            break
                        ip = self.subst(a, d.line)
                        if ip is None:
                            self.notes.append(
                                f"# bind __PILLAR__DNS__SERVER__ (line {d.line}): the kube-dns ClusterIP, bound by "
                                "NodeLocal DNSCache in iptables mode; not listened on: give --dns-server IP (or "
                                "--localip LOCAL,SERVICE) to add it")
                            continue
                        check_ip(ip, f"line {d.line}: bind")
                        binds.append(ip)
                    if d.block is not None:
                        self.note_unmapped(d.line, d.text(), "bind options (except) have no nodedns equivalent")
                elif d.name == "forward":
                    forwards.append(d)
                elif handler is not None:
                    handler(d, [z for z, _ in zones])
                else:
                    self.note_unmapped(d.line, d.text(), "unknown to this script")
            if not have_bind:
                binds = ["0.0.0.0"]
                self.notes.append(
                    f"# server block at line {b.line} has no bind: CoreDNS listens on every address; nodedns does "
                    "not yet answer from the queried address on a wildcard listener (see README, Configuration)")
            for ip in binds:
                for p in sorted(ports):
                    a = fmt_addr(ip, p)
                    if a not in self.listen:
                        self.listen.append(a)
            if not forwards:
                for z, _ in zones:
                    self.note_unmapped(b.line, f"server block {z}", "no forward: nodedns only forwards, a zone "
                                       "without servers cannot be configured")
            for f in forwards:
                self.forward(f, zones, seen_zones)
        if len({l.rsplit(":", 1)[1] for l in self.listen}) > 1 or len(blocks) > 1:
            self.notes.append("# nodedns answers every zone on every listen address (CoreDNS binds per server "
                              "block); the listen list is the union of the blocks' bind addresses and ports")
        if not self.zones:
            raise InputError("no forward directive could be mapped: nothing to forward to")

    def forward(self, d, zones, seen):
        if not d.args:
            raise InputError(f"line {d.line}: forward without arguments")
        frm, tos = d.args[0], d.args[1:]
        if not tos:
            raise InputError(f"line {d.line}: forward {frm} without a destination")
        names = [z for z, _ in zones] if frm == "." else [norm_zone(zone_key(frm, f"line {d.line}")[0])]
        servers, comments, transport = [], [], None
        for t in tos:
            t = self.subst(t, d.line)
            if t in ("__PILLAR__UPSTREAM__SERVERS__", "/etc/resolv.conf"):
                servers.append("resolv.conf")
                continue
            if t.startswith("dns://"):
                t = t[len("dns://"):]
            if "://" in t:
                self.note_unmapped(d.line, f"forward {frm} {t}", "only plain DNS upstreams are supported (no DoT/DoH)")
                continue
            if t.startswith("/"):
                self.note_unmapped(d.line, f"forward {frm} {t}", "only /etc/resolv.conf is read as a server list")
                continue
            host, port = split_host_port(t)
            check_ip(host, f"line {d.line}: forward")
            servers.append(fmt_addr(host, port or DEFAULT_PORT))
        if d.block is not None:
            for o in d.block:
                text = o.text()
                if o.name == "force_tcp":
                    transport = "tcp"
                    comments.append(f"# forward {frm} ... {{ force_tcp }} -> transport = \"tcp\" (one connection "
                                    "per server, kept open and reused)")
                elif o.name == "prefer_udp":
                    transport = transport or "prefer_udp"
                    comments.append("# forward { prefer_udp } -> transport = \"prefer_udp\" (UDP, TCP after "
                                    "truncation; nodedns's default)")
                elif o.name == "max_fails":
                    n = parse_int(o.args[0] if o.args else "", f"line {o.line}: max_fails")
                    if n == 0:
                        comments.append("# forward { max_fails 0 }: not mapped, nodedns's breaker cannot be turned "
                                        "off (upstream.breaker_failures)")
                    else:
                        self.upstream["breaker_failures"] = min(n, 1000)
                        comments.append(f"# forward {{ max_fails {n} }}: approximately upstream.breaker_failures "
                                        "(global, with probing, not CoreDNS's health checks)")
                elif o.name == "health_check":
                    comments.append(f"# not mapped: forward {{ {text} }}: nodedns probes a server only after its "
                                    "breaker opens (upstream.probe_min_ms / probe_max_ms)")
                elif o.name == "policy":
                    comments.append(f"# not mapped: forward {{ {text} }}: nodedns orders a zone's servers by "
                                    "smoothed round-trip time and breaker state")
                elif o.name == "max_concurrent":
                    comments.append(f"# approximately: forward {{ {text} }}: nodedns's adaptive limit "
                                    "(upstream.max_inflight, per zone and worker) plays this role")
                else:
                    comments.append(f"# not mapped: forward {{ {text} }}")
                    self.stderr.append(f"line {o.line}: forward option '{text}' not mapped")
        if not servers:
            self.note_unmapped(d.line, d.text(), "no usable server")
            return
        for name in names:
            if name in seen:
                self.note_unmapped(d.line, f"forward for zone {name}", f"zone already forwarded at line {seen[name]} "
                                   "(nodedns has one [[zone]] per name)")
                continue
            seen[name] = d.line
            self.zones.append({"name": name, "servers": servers, "comments": list(comments),
                               "line": d.line, "stale": None, "transport": transport})

    # Directives, one method each: d_<name>(directive, zone names of the block).

    def d_cache(self, d, zones):
        c = self.cache
        ttl_all = parse_int(d.args[0], f"line {d.line}: cache TTL") if d.args else None
        success_ttl = ttl_all if ttl_all is not None else SUCCESS_MAX_TTL
        denial_ttl = ttl_all if ttl_all is not None else DENIAL_MAX_TTL
        success_cap = denial_cap = CACHE_CAPACITY
        min_ttls = []
        if len(d.args) > 1:
            c["comments"].append(f"# not mapped: cache zones {' '.join(d.args[1:])} (line {d.line}): nodedns "
                                 "caches every zone")
        for o in d.block or []:
            w = f"line {o.line}: cache {o.name}"
            if o.name in ("success", "denial"):
                if not o.args:
                    raise InputError(f"{w} needs a capacity")
                cap = parse_int(o.args[0], w)
                ttl = parse_int(o.args[1], w) if len(o.args) > 1 else None
                if len(o.args) > 2:
                    min_ttls.append(parse_int(o.args[2], w))
                if o.name == "success":
                    success_cap, success_ttl = cap, ttl if ttl is not None else success_ttl
                else:
                    denial_cap, denial_ttl = cap, ttl if ttl is not None else denial_ttl
            elif o.name == "prefetch":
                amount = parse_int(o.args[0], w, 1) if o.args else 1
                duration = parse_duration(o.args[1], w) if len(o.args) > 1 else 60
                pct = 10
                if len(o.args) > 2:
                    m = re.fullmatch(r"(\d+)%", o.args[2])
                    if not m:
                        raise InputError(f"{w}: '{o.args[2]}' is not a percentage such as 10%")
                    pct = int(m.group(1))
                c["prefetch"].append((amount, duration, pct, o.line, zones))
            elif o.name == "serve_stale":
                secs = parse_duration(o.args[0], w) if o.args else SERVE_STALE_DEFAULT_S
                mode = o.args[1] if len(o.args) > 1 else "immediate"
                for z in zones:
                    self.pending_stale[z] = (secs, mode, o.line)
            else:
                c["comments"].append(f"# not mapped: cache {{ {o.text()} }} (line {o.line})")
                self.stderr.append(f"line {o.line}: cache option '{o.text()}' not mapped")
        c["success_ttl"].append((success_ttl, zones))
        c["denial_ttl"].append((denial_ttl, zones))
        c["min_ttl"].extend(min_ttls or [CACHE_MIN_TTL])
        c["capacity"] += success_cap + denial_cap
        c["blocks"] = c.get("blocks", 0) + 1

    pending_stale = None

    def d_prometheus(self, d, zones):
        addr = self.subst(d.args[0], d.line) if d.args else "localhost:9153"
        host, port = split_host_port(addr)
        if host in ("", "localhost"):
            host = "0.0.0.0" if host == "" else "127.0.0.1"
        check_ip(host, f"line {d.line}: prometheus")
        a = fmt_addr(host, port or 9153)
        if self.metrics is None:
            self.metrics = a
            self.metrics_comments.append(f"# prometheus {addr} -> metrics.listen (nodedns's metric names are its "
                                         "own: nodedns_*, not coredns_*)")
        elif self.metrics != a:
            self.note_unmapped(d.line, d.text(), f"nodedns has one metrics listener ({self.metrics})")

    def d_health(self, d, zones):
        addr = self.subst(d.args[0], d.line) if d.args else ":8080"
        self.health.append((addr, d.line))
        for o in d.block or []:
            if o.name == "lameduck":
                self.metrics_comments.append(f"# health {{ {o.text()} }}: approximately: /readyz turns 503 as "
                                             "soon as shutdown begins; server.handover_grace_ms keeps serving")
            else:
                self.note_unmapped(o.line, f"health {{ {o.text()} }}", "unknown health option")

    def d_errors(self, d, zones):
        self.log_comments.append(f"# errors (line {d.line}): approximately: nodedns logs upstream "
                                 "failures per server (breaker changes) and a periodic summary, not each failed query")
        if d.block is not None:
            self.note_unmapped(d.line, d.text(), "errors consolidation options have no equivalent")

    def d_log(self, d, zones):
        self.log["query_log_sample"] = 1
        self.log_comments.append(f"# log (line {d.line}): approximately log.query_log_sample = 1 (every answered "
                                 "query, for all zones; CoreDNS's log format and classes are not mapped)")

    def d_reload(self, d, zones):
        self.notes.append(f"# reload (line {d.line}): approximately: nodedns reloads on SIGHUP or 'dnsctl reload', "
                          "it does not watch the file")

    def d_loop(self, d, zones):
        if not self.loop_noted:
            self.loop_noted = True
            self.notes.append(f"# loop (line {d.line}): built into nodedns, always on: a probe per zone server at "
                              "start-up and reload; a loop stops start-up or refuses the reload")

    def finish(self):
        self.pending_stale = self.pending_stale or {}
        for z in self.zones:
            st = self.pending_stale.get(z["name"])
            if st is None and z["name"] != ".":
                # a forward FROM inside a block inherits the block's serve_stale
                st = next((v for k, v in self.pending_stale.items() if z["name"].endswith("." + k)), None)
            if st is None:
                z["stale"] = NODEDNS_DEFAULT_MAX_STALE
                z["comments"].append("# no serve_stale in the Corefile (CoreDNS answers SERVFAIL once an entry "
                                     "expires and the upstream fails); max_stale is nodedns's default, 0 turns "
                                     "stale serving off")
            else:
                secs, mode, line = st
                z["stale"] = min(secs, MAX_STALE_LIMIT_S)
                z["comments"].append(f"# serve_stale {secs}s {mode} (line {line}) -> max_stale"
                                     + (" (capped at 7 days)" if secs > MAX_STALE_LIMIT_S else "")
                                     + "; approximately: nodedns asks upstream first and answers stale after "
                                     "serve_stale.client_timeout_ms (neither 'immediate' nor 'verify')")

    # --- Output ---------------------------------------------------------------

    def render(self):
        o = self.opts
        out = ["# Generated by scripts/from_nodelocaldns.py from a NodeLocal DNSCache Corefile.",
               "# Check it with: nodedns --check-config FILE", ""]
        out += self.notes
        if self.notes:
            out.append("")
        out += ["[server]", f"listen = {toml_list(self.listen)}", ""]

        c = self.cache
        out.append("[cache]")
        if c.get("blocks"):
            s = min(t for t, _ in c["success_ttl"])
            n = min(t for t, _ in c["denial_ttl"])
            mn = min(min(c["min_ttl"]), s)
            cap = max(c["capacity"], 16)
            if len({t for t, _ in c["success_ttl"]}) > 1 or len({t for t, _ in c["denial_ttl"]}) > 1:
                per = "; ".join(f"{','.join(zs)}: success {a}s" for a, zs in c["success_ttl"])
                per += "; " + "; ".join(f"{','.join(zs)}: denial {a}s" for a, zs in c["denial_ttl"])
                out.append(f"# approximately: nodedns has one cache for every zone, the Corefile's TTLs per block "
                           f"were ({per}); the smallest are used")
            out.append("# cache success/denial capacities of every block, added up (CoreDNS keeps one cache per "
                       "server block); max_bytes keeps nodedns's default")
            out.append(f"max_entries = {cap}")
            out.append(f"max_ttl = {s}")
            out.append(f"negative_max_ttl = {n}")
            out.append("# CoreDNS's MINTTL (default 5 s) for success and denial")
            out.append(f"min_ttl = {mn}")
            if c["prefetch"]:
                pct = min(50, max(1, min(p for _, _, p, _, _ in c["prefetch"])))
                out.append("prefetch = true")
                out.append(f"prefetch_threshold_percent = {pct}")
                for amount, duration, p, line, zs in c["prefetch"]:
                    out.append(f"# prefetch {amount} {duration}s {p}% (line {line}, {','.join(zs)}): approximately: "
                               "nodedns refreshes an entry asked for within the last "
                               "prefetch_threshold_percent of its TTL, for every zone; AMOUNT and DURATION "
                               "are not mapped")
            else:
                out.append("# no prefetch in the Corefile; nodedns prefetches by default (prefetch = true), "
                           "set false for CoreDNS's behaviour")
        else:
            out.append("# no cache directive: CoreDNS would not cache; nodedns always caches (defaults kept)")
        out += c["comments"]
        out.append("")

        if self.upstream or self.upstream_comments:
            out.append("[upstream]")
            out += self.upstream_comments
            out += [f"{k} = {v}" for k, v in self.upstream.items()]
            out.append("")

        for z in self.zones:
            out.append(f"# forward at line {z['line']}")
            out += z["comments"]
            out += ["[[zone]]", f"name = {toml_str(z['name'])}", f"servers = {toml_list(z['servers'])}",
                    f"max_stale = {z['stale']}"]
            if z["transport"]:
                out.append(f"transport = {toml_str(z['transport'])}")
            out.append("")

        out.append("[metrics]")
        out += self.metrics_comments
        health_listen = None
        if self.metrics is not None and self.health:
            addr, line = self.health[0]
            host, port = split_host_port(addr)
            host = host or "0.0.0.0"
            check_ip(host, f"line {line}: health")
            health_listen = fmt_addr(host, port or 8080)
            if health_listen == self.metrics:
                health_listen = None
            out.append(f"# health {addr} (line {line}) -> " +
                       ("health.listen: /healthz and /readyz there, /metrics on metrics.listen" if health_listen
                        else "served with /metrics on metrics.listen"))
            for addr, line in self.health[1:]:
                out.append(f"# not mapped: health {addr} (line {line}): nodedns has one health listener")
        if self.metrics is not None:
            out.append(f"listen = {toml_str(self.metrics)}")
        elif self.health:
            host, port = split_host_port(self.health[0][0])
            host = host or "0.0.0.0"
            check_ip(host, f"line {self.health[0][1]}: health")
            out.append("# no prometheus directive: /metrics is served on the health address too")
            out.append(f"listen = {toml_str(fmt_addr(host, port or 8080))}")
        else:
            out.append("# neither prometheus nor health in the Corefile: no HTTP listener")
            out.append('listen = ""')
        out.append("")
        if health_listen:
            out += ["[health]", f"listen = {toml_str(health_listen)}", ""]

        if self.log or self.log_comments:
            out.append("[log]")
            out += self.log_comments
            out += [f"{k} = {v}" for k, v in self.log.items()]
            out.append("")

        out.append("[interface]")
        out.append("# node-cache's interface and iptables rules: nodedns's own dummy interface holds the listen "
                   "addresses (needs CAP_NET_ADMIN)")
        if self.localips:
            out.append(f"# -localip {','.join(self.localips)}")
        out.append("setup = true")
        addrs = self.localips if self.localips else []
        out.append(f"addresses = {toml_list(addrs)}")
        out.append("# approximately -setupiptables: NOTRACK rules in the raw table (node-cache also adds filter "
                   "ACCEPT rules, nodedns does not)")
        out.append("notrack = true")
        if o.skipteardown:
            out.append("# not mapped: -skipteardown: nodedns always removes its interface and rules on a clean exit "
                       "(and adopts them after a crash); there is no option to keep them")
        else:
            out.append("# -skipteardown not given: like node-cache, nodedns removes interface and rules on a clean exit")
        out.append(f"# -upstreamsvc {o.upstreamsvc}: its ClusterIP is the cluster zones' server "
                   + (f"({o.cluster_dns}, from --cluster-dns)" if o.cluster_dns else "(not used by this Corefile)"))
        return "\n".join(out) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Print the nodedns TOML equivalent of a NodeLocal DNSCache Corefile (or of the manifest "
                    "holding it).")
    ap.add_argument("corefile", help="the Corefile or the nodelocaldns.yaml manifest; - for stdin")
    ap.add_argument("--localip", default="",
                    help="node-cache -localip: comma-separated addresses; the first replaces __PILLAR__LOCAL__DNS__ "
                         "(default 169.254.20.10), a second one __PILLAR__DNS__SERVER__")
    ap.add_argument("--dns-server", default="",
                    help="the kube-dns ClusterIP for __PILLAR__DNS__SERVER__ (bound in iptables mode)")
    ap.add_argument("--cluster-dns", default="",
                    help="the ClusterIP of the -upstreamsvc service, for __PILLAR__CLUSTER__DNS__")
    ap.add_argument("--upstreamsvc", default="kube-dns-upstream", help="node-cache -upstreamsvc (for the comments)")
    ap.add_argument("--skipteardown", action="store_true", help="node-cache -skipteardown was set")
    ap.add_argument("--domain", default="cluster.local", help="replaces __PILLAR__DNS__DOMAIN__")
    opts = ap.parse_args(argv)
    try:
        if opts.corefile == "-":
            text = sys.stdin.read()
        else:
            try:
                with open(opts.corefile, encoding="utf-8") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError) as e:
                raise InputError(f"cannot read: {e}") from None
        body, offset = extract_corefile(text)
        conv = Converter(opts)
        conv.pending_stale = {}
        conv.convert(parse_corefile(body, offset))
        conv.finish()
        result = conv.render()
    except InputError as e:
        print(f"from_nodelocaldns: {opts.corefile}: {e}", file=sys.stderr)
        return 2
    for msg in conv.stderr:
        print(f"from_nodelocaldns: {opts.corefile}: {msg}", file=sys.stderr)
    sys.stdout.write(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
