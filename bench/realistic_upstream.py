#!/usr/bin/python3
"""A fake upstream that answers as a recursive server without minimal
responses does (BIND's `minimal-responses no`): the answer, the zone's NS
records in the authority section and their glue (A and AAAA) in the
additional section; for DO queries the RRSIGs too (ECDSA P-256, 64-octet
signatures) and NSEC records for NXDOMAIN. Used by bench/minimal_responses.sh.

  realistic_upstream.py names ZONES   prints the query list (dnsperf format)
  realistic_upstream.py serve PORTFILE  answers on a free 127.0.0.1 UDP+TCP port
                                        (written to PORTFILE) until SIGTERM

The zones and names are deterministic: zone i has 2 to 6 name servers (with
glue), and per zone the names are www (A, AAAA), api (A, 1-4 addresses),
cdn (A, 8 addresses), mail (A), the apex (MX with 1-3 exchanges, TXT with 1-3
strings of 60-200 octets as SPF and site verification records are) and one
name that does not exist.
Python 3 with Debian's python3-dnslib; loopback only.
"""
import hashlib
import signal
import socket
import socketserver
import struct
import sys
import threading

from dnslib import AAAA, A, MX, NS, QTYPE, RCODE, RD, RR, SOA, TXT, DNSRecord, EDNS0

ANSWER_TTL = 300
ZONE_TTL = 86400


def h(*parts):
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "big")


def zone_of(i):
    return "zone%d.example." % i


def names(zones):
    for i in range(zones):
        z = zone_of(i)
        yield from (
            ("www." + z, "A"), ("www." + z, "AAAA"), ("api." + z, "A"), ("cdn." + z, "A"),
            ("mail." + z, "A"), (z, "MX"), (z, "TXT"), ("nx%d.%s" % (h(i, "nx") % 1000, z), "A"),
        )


def sig(owner, covered, signer):
    """An RRSIG over (owner, covered): ECDSA P-256 (algorithm 13), 64 octets."""
    labels = len(str(owner).rstrip(".").split("."))
    fixed = struct.pack("!HBBIIIH", covered, 13, labels, ANSWER_TTL, 1_800_000_000, 1_700_000_000,
                        h(signer) % 65536)
    body = bytes((h(owner, covered, k) >> 3) & 0xFF for k in range(64))
    return RR(owner, QTYPE.RRSIG, rdata=RD(fixed + wire_name(signer) + body), ttl=ANSWER_TTL)


def wire_name(name):
    out = b""
    for label in str(name).rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def addr4(*k):
    x = h(*k)
    return "198.51.%d.%d" % ((x >> 8) % 256, x % 254 + 1)


def addr6(*k):
    x = h(*k)
    return "2001:db8:%x:%x::%x" % ((x >> 32) % 65536, (x >> 16) % 65536, x % 65536)


def answer(request):
    q = request.q
    qname = str(q.qname).lower()
    do = any(rr.rtype == QTYPE.OPT and (rr.ttl & 0x8000) for rr in request.ar)
    reply = request.reply()
    reply.header.aa = 0
    reply.header.ra = 1
    labels = qname.rstrip(".").split(".")
    if len(labels) < 2 or labels[-1] != "example" or not labels[-2].startswith("zone"):
        reply.header.rcode = RCODE.REFUSED
        return reply
    i = int(labels[-2][4:] or 0)
    zone = zone_of(i)
    host = qname[: -len(zone)].rstrip(".") if qname != zone else ""
    qt = QTYPE[q.qtype]

    def add(section, rrs, covered, owner):
        section(*rrs)
        if do:
            section(sig(owner, covered, zone))

    answers = []
    if host.startswith("nx"):
        reply.header.rcode = RCODE.NXDOMAIN
        soa = RR(zone, QTYPE.SOA, ttl=3600, rdata=SOA("ns1." + zone, "hostmaster." + zone,
                                                      (2024010101, 7200, 3600, 1209600, 3600)))
        reply.add_auth(soa)
        if do:
            reply.add_auth(sig(zone, QTYPE.SOA, zone))
            for owner in (zone, "mail." + zone):
                reply.add_auth(RR(owner, QTYPE.NSEC, ttl=3600, rdata=RD(wire_name("www." + zone) + b"\x00\x06\x62\x01\x80\x08\x00\x03")))
                reply.add_auth(sig(owner, QTYPE.NSEC, zone))
        return with_opt(request, reply, do)
    if qt == "A":
        n = {"www": 1, "api": 1 + h(i, "api") % 4, "cdn": 8, "mail": 1}.get(host, 1)
        answers = [RR(qname, QTYPE.A, ttl=ANSWER_TTL, rdata=A(addr4(i, host, k))) for k in range(n)]
    elif qt == "AAAA":
        answers = [RR(qname, QTYPE.AAAA, ttl=ANSWER_TTL, rdata=AAAA(addr6(i, host, k))) for k in range(2)]
    elif qt == "MX":
        answers = [RR(qname, QTYPE.MX, ttl=ANSWER_TTL, rdata=MX("mx%d.%s" % (k, zone), 10 * (k + 1)))
                   for k in range(1 + h(i, "mx") % 3)]
    elif qt == "TXT":
        answers = []
        for k in range(1 + h(i, "txt") % 3):
            size = 60 + h(i, "txt", k) % 141
            text = ("v=spf1 include:_spf.zone%d.example ~all " % i + "x" * 200)[:size]
            answers.append(RR(qname, QTYPE.TXT, ttl=ANSWER_TTL, rdata=TXT(text)))
    if answers:
        add(reply.add_answer, answers, q.qtype, qname)
    # Not minimal: the zone's NS records, their glue, and the MX targets' addresses.
    nss = ["ns%d.%s" % (k + 1, zone) for k in range(2 + h(i, "ns") % 5)]
    add(reply.add_auth, [RR(zone, QTYPE.NS, ttl=ZONE_TTL, rdata=NS(n)) for n in nss], QTYPE.NS, zone)
    extra = [rr.rdata.label for rr in answers if rr.rtype == QTYPE.MX]
    for n in nss + [str(x) for x in extra]:
        reply.add_ar(RR(n, QTYPE.A, ttl=ZONE_TTL, rdata=A(addr4(n))))
        reply.add_ar(RR(n, QTYPE.AAAA, ttl=ZONE_TTL, rdata=AAAA(addr6(n))))
    return with_opt(request, reply, do)


def with_opt(request, reply, do):
    if any(rr.rtype == QTYPE.OPT for rr in request.ar):
        reply.add_ar(EDNS0(udp_len=1232, flags="do" if do else ""))
    return reply


class Udp(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        try:
            reply = answer(DNSRecord.parse(data)).pack()
        except Exception:  # a malformed query: no answer
            return
        if len(reply) > 4096:  # the bench's queries advertise at most 1232; keep UDP sane
            reply = reply[:2] + bytes([reply[2] | 0x02]) + reply[3:12]
        sock.sendto(reply, self.client_address)


class Tcp(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            head = self.request.recv(2)
            if len(head) < 2:
                return
            (n,) = struct.unpack("!H", head)
            data = b""
            while len(data) < n:
                chunk = self.request.recv(n - len(data))
                if not chunk:
                    return
                data += chunk
            reply = answer(DNSRecord.parse(data)).pack()
            self.request.sendall(struct.pack("!H", len(reply)) + reply)


class UdpServer(socketserver.ThreadingMixIn, socketserver.UDPServer):
    daemon_threads = True


class TcpServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(port_file):
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})  # threads inherit it
    for _ in range(100):
        udp = UdpServer(("127.0.0.1", 0), Udp)
        port = udp.server_address[1]
        try:
            tcp = TcpServer(("127.0.0.1", port), Tcp)
            break
        except OSError:
            udp.server_close()
    else:
        sys.exit("no free port")
    for s in (udp, tcp):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    with open(port_file, "w") as f:
        f.write("%d\n" % port)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


if __name__ == "__main__":
    if sys.argv[1] == "names":
        for name, qt in names(int(sys.argv[2])):
            print(name, qt)
    else:
        serve(sys.argv[2])
