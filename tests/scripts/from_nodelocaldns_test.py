#!/usr/bin/python3
"""Tests scripts/from_nodelocaldns.py on the NodeLocal DNSCache manifest's Corefile.

Run: /usr/bin/python3 tests/scripts/from_nodelocaldns_test.py (ctest: from_nodelocaldns).
"""
import os
import pathlib
import subprocess
import sys
import tempfile
import tomllib
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "from_nodelocaldns.py"

# The Corefile of kubernetes/kubernetes cluster/addons/dns/nodelocaldns/nodelocaldns.yaml
# as of Kubernetes 1.22-1.30 (node-local-dns 1.21+), written from memory of that
# manifest, with __PILLAR__DNS__DOMAIN__ replaced by cluster.local as its README's
# sed command does; `log` is added to the "." block (commented out or absent
# upstream, common in operators' copies) to test its mapping.
NLD_COREFILE = """\
cluster.local:53 {
    errors
    cache {
            success 9984 30
            denial 9984 5
    }
    reload
    loop
    bind __PILLAR__LOCAL__DNS__ __PILLAR__DNS__SERVER__
    forward . __PILLAR__CLUSTER__DNS__ {
            force_tcp
    }
    prometheus :9253
    health __PILLAR__LOCAL__DNS__:8080
    }
in-addr.arpa:53 {
    errors
    cache 30
    reload
    loop
    bind __PILLAR__LOCAL__DNS__ __PILLAR__DNS__SERVER__
    forward . __PILLAR__CLUSTER__DNS__ {
            force_tcp
    }
    prometheus :9253
    }
ip6.arpa:53 {
    errors
    cache 30
    reload
    loop
    bind __PILLAR__LOCAL__DNS__ __PILLAR__DNS__SERVER__
    forward . __PILLAR__CLUSTER__DNS__ {
            force_tcp
    }
    prometheus :9253
    }
.:53 {
    errors
    log
    cache 30
    reload
    loop
    bind __PILLAR__LOCAL__DNS__ __PILLAR__DNS__SERVER__
    forward . __PILLAR__UPSTREAM__SERVERS__
    prometheus :9253
    }
"""

MANIFEST = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: node-local-dns
  namespace: kube-system
data:
  Corefile: |
""" + "".join("    " + l if l else l for l in NLD_COREFILE.splitlines(True)) + """\
---
apiVersion: apps/v1
kind: DaemonSet
"""

FLAGS = ["--localip", "169.254.20.10,10.96.0.10", "--cluster-dns", "10.96.0.11"]


def run(text, *args):
    with tempfile.NamedTemporaryFile("w", suffix=".Corefile", delete=False) as f:
        f.write(text)
    try:
        return subprocess.run([sys.executable, str(SCRIPT), *args, f.name], capture_output=True, text=True,
                              timeout=30)
    finally:
        os.unlink(f.name)


class NodeLocalDNSCorefileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proc = run(NLD_COREFILE, *FLAGS)
        cls.out = cls.proc.stdout
        cls.cfg = tomllib.loads(cls.out) if cls.proc.returncode == 0 else None

    def test_exits_zero_with_valid_toml(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr)
        self.assertIsNotNone(self.cfg)
        self.assertNotIn("Traceback", self.proc.stderr)

    def test_only_known_keys(self):
        known = {
            "server": {"listen"},
            "cache": {"max_entries", "max_ttl", "negative_max_ttl", "min_ttl", "prefetch",
                      "prefetch_threshold_percent"},
            "upstream": {"breaker_failures"},
            "zone": {"name", "servers", "max_stale", "last_known_good", "transport"},
            "metrics": {"listen"},
            "health": {"listen"},
            "log": {"query_log_sample"},
            "interface": {"setup", "addresses", "notrack", "name"},
        }
        for section, value in self.cfg.items():
            self.assertIn(section, known)
            for table in value if isinstance(value, list) else [value]:
                self.assertLessEqual(set(table), known[section], section)

    def test_zones_and_servers(self):
        zones = [(z["name"], z["servers"]) for z in self.cfg["zone"]]
        self.assertEqual(zones, [
            ("cluster.local", ["10.96.0.11:53"]),
            ("in-addr.arpa", ["10.96.0.11:53"]),
            ("ip6.arpa", ["10.96.0.11:53"]),
            (".", ["resolv.conf"]),
        ])
        # force_tcp on the cluster's zones: transport "tcp"; "." keeps the default.
        self.assertEqual([z.get("transport") for z in self.cfg["zone"]], ["tcp", "tcp", "tcp", None])
        self.assertEqual(self.out.count("force_tcp } -> transport = \"tcp\""), 3)
        # No serve_stale in the Corefile: nodedns's default, said in a comment.
        self.assertTrue(all(z["max_stale"] == 86400 for z in self.cfg["zone"]))
        self.assertIn("no serve_stale in the Corefile", self.out)

    def test_listen_addresses(self):
        self.assertEqual(self.cfg["server"]["listen"], ["169.254.20.10:53", "10.96.0.10:53"])
        self.assertEqual(self.cfg["interface"]["addresses"], ["169.254.20.10", "10.96.0.10"])
        self.assertTrue(self.cfg["interface"]["setup"])

    def test_cache_settings(self):
        c = self.cfg["cache"]
        self.assertEqual(c["max_ttl"], 30)
        self.assertEqual(c["negative_max_ttl"], 5)  # cluster.local's denial TTL, the smallest
        self.assertEqual(c["min_ttl"], 5)
        self.assertEqual(c["max_entries"], 4 * 2 * 9984)
        self.assertIn("approximately: nodedns has one cache for every zone", self.out)
        self.assertIn("no prefetch in the Corefile", self.out)

    def test_health_and_metrics(self):
        self.assertEqual(self.cfg["metrics"]["listen"], "0.0.0.0:9253")
        self.assertIn("# health 169.254.20.10:8080", self.out)
        # health on an address of its own, as the Corefile has it.
        self.assertEqual(self.cfg["health"]["listen"], "169.254.20.10:8080")
        self.assertIn("/healthz", self.out)

    def test_unmapped_directives_are_commented(self):
        self.assertNotIn("not available yet", self.out.split("# health")[0])
        self.assertIn("# loop (line 8): built into nodedns, always on", self.out)
        self.assertEqual(self.out.count("# loop (line"), 1)
        self.assertIn("# reload", self.out)
        self.assertIn("# errors", self.out)
        self.assertEqual(self.cfg["log"]["query_log_sample"], 1)
        self.assertIn("-skipteardown not given", self.out)
        self.assertEqual(self.proc.stderr, "")

    def test_manifest_input(self):
        p = run(MANIFEST, *FLAGS)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(tomllib.loads(p.stdout), self.cfg)

    def test_placeholders_domain_and_skipteardown(self):
        p = run(NLD_COREFILE.replace("cluster.local:53", "__PILLAR__DNS__DOMAIN__:53"),
                "--cluster-dns", "10.96.0.11", "--domain", "corp.internal", "--skipteardown")
        self.assertEqual(p.returncode, 0, p.stderr)
        cfg = tomllib.loads(p.stdout)
        self.assertEqual(cfg["zone"][0]["name"], "corp.internal")
        # Default -localip; no service IP given: not listened on, and said so.
        self.assertEqual(cfg["server"]["listen"], ["169.254.20.10:53"])
        self.assertIn("bind __PILLAR__DNS__SERVER__", p.stdout)
        self.assertIn("# not mapped: -skipteardown", p.stdout)


class OtherCorefilesTest(unittest.TestCase):
    def test_cache_block_prefetch_serve_stale(self):
        p = run("""\
example.org:1053 {
    bind 127.0.0.1 ::1
    cache 300 {
        success 5000 600 10
        denial 2000 60
        prefetch 5 10m 20%
        serve_stale 2h verify
    }
    forward . 10.0.0.1 10.0.0.2:5353 [2001:db8::1]:53 {
        max_fails 4
        policy sequential
    }
}
""")
        self.assertEqual(p.returncode, 0, p.stderr)
        cfg = tomllib.loads(p.stdout)
        self.assertEqual(cfg["server"]["listen"], ["127.0.0.1:1053", "[::1]:1053"])
        self.assertEqual(cfg["cache"]["max_ttl"], 600)
        self.assertEqual(cfg["cache"]["negative_max_ttl"], 60)
        self.assertEqual(cfg["cache"]["min_ttl"], 10)
        self.assertEqual(cfg["cache"]["max_entries"], 7000)
        self.assertTrue(cfg["cache"]["prefetch"])
        self.assertEqual(cfg["cache"]["prefetch_threshold_percent"], 20)
        self.assertEqual(cfg["upstream"]["breaker_failures"], 4)
        z = cfg["zone"][0]
        self.assertEqual(z["name"], "example.org")
        self.assertEqual(z["servers"], ["10.0.0.1:53", "10.0.0.2:5353", "[2001:db8::1]:53"])
        self.assertEqual(z["max_stale"], 7200)
        self.assertIn("# not mapped: forward { policy sequential }", p.stdout)
        self.assertIn("neither 'immediate' nor 'verify'", p.stdout)
        self.assertIn("neither prometheus nor health", p.stdout)

    def test_unknown_directive_comment_and_stderr(self):
        p = run(". {\n    rewrite name foo bar\n    hosts /etc/hosts\n    forward . /etc/resolv.conf\n}\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("# not mapped: rewrite name foo bar (line 2)", p.stdout)
        self.assertIn("# not mapped: hosts /etc/hosts (line 3)", p.stdout)
        self.assertIn("'rewrite name foo bar' not mapped", p.stderr)
        self.assertIn("'hosts /etc/hosts' not mapped", p.stderr)
        cfg = tomllib.loads(p.stdout)
        self.assertEqual(cfg["zone"], [{"name": ".", "servers": ["resolv.conf"], "max_stale": 86400}])
        # No bind: CoreDNS listens everywhere; the wildcard caveat is said.
        self.assertEqual(cfg["server"]["listen"], ["0.0.0.0:53"])
        self.assertIn("has no bind", p.stdout)

    def test_unknown_nested_option(self):
        p = run(". {\n    cache 30 {\n        keepttl\n    }\n    forward . 1.1.1.1 {\n        expire 10s\n    }\n}\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("# not mapped: cache { keepttl }", p.stdout)
        self.assertIn("# not mapped: forward { expire 10s }", p.stdout)
        self.assertIn("keepttl", p.stderr)
        tomllib.loads(p.stdout)


class ErrorsTest(unittest.TestCase):
    def assertError(self, text, fragment, *args):
        p = run(text, *args)
        self.assertEqual(p.returncode, 2, p.stdout)
        self.assertEqual(p.stdout, "")
        self.assertIn(fragment, p.stderr)
        self.assertNotIn("Traceback", p.stderr)

    def test_unclosed_block(self):
        self.assertError(". {\n    forward . 1.1.1.1\n", "never closed (unbalanced braces)")

    def test_unclosed_nested_block(self):
        self.assertError(". {\n    forward . 1.1.1.1 {\n        force_tcp\n}\n", "never closed")

    def test_extra_close(self):
        self.assertError(". {\n    forward . 1.1.1.1\n}\n}\n", "without a matching")

    def test_directive_outside_block(self):
        self.assertError("forward . 1.1.1.1\n", "expected a server block")

    def test_empty(self):
        self.assertError("# nothing\n", "no server block")

    def test_cluster_dns_needed(self):
        self.assertError(NLD_COREFILE, "--cluster-dns")

    def test_bad_values(self):
        self.assertError(". {\n    cache abc\n    forward . 1.1.1.1\n}\n", "not an integer")
        self.assertError(". {\n    forward . not-an-ip\n}\n", "not an IP address")
        self.assertError(". {\n    forward . 1.1.1.1:dns\n}\n", "not a port number")
        self.assertError(". {\n    forward . 1.1.1.1\n}\n", "not an IP address", "--localip", "x")
        self.assertError(". {\n    cache {\n        serve_stale soon\n    }\n    forward . 1.1.1.1\n}\n",
                         "not a duration")

    def test_no_forward(self):
        self.assertError(". {\n    cache 30\n}\n", "nothing to forward to")

    def test_missing_file(self):
        p = subprocess.run([sys.executable, str(SCRIPT), "/nonexistent/Corefile"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("cannot read", p.stderr)
        self.assertNotIn("Traceback", p.stderr)


if __name__ == "__main__":
    unittest.main()
