// The forwarding cache end to end: the real nodedns binary on a free
// loopback port, a fake upstream the test controls, and real clients (our
// own, dig and kdig).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/dns/name.h"
#include "tests/support/daemon_process.h"
#include "tests/support/dns_client.h"
#include "tests/support/fake_upstream.h"

namespace nodedns::testing {
namespace {

using ::testing::HasSubstr;

class ForwardingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    upstream_ = FakeUpstream::Start();
    ASSERT_NE(upstream_, nullptr);
  }
  void StartDaemon(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--upstream", upstream_->address(), "--log-level", "warn"};
    args.insert(args.end(), extra.begin(), extra.end());
    daemon_ = DaemonProcess::Start(args);
    ASSERT_NE(daemon_->port(), 0) << daemon_->log();
  }
  void TearDown() override {
    if (daemon_) {
      EXPECT_EQ(daemon_->Stop(), 0) << daemon_->log();
    }
  }
  dns::Message Ask(const std::string& name, uint16_t type = dns::kTypeA, QueryOptions o = {}) {
    auto a = UdpExchange("127.0.0.1", daemon_->port(), MakeQuery(name, type, o));
    EXPECT_TRUE(a.has_value()) << "no answer for " << name;
    return a ? Parse(*a) : dns::Message{};
  }
  std::string Dig(const std::string& args) {
    return RunCommand("dig @127.0.0.1 -p " + std::to_string(daemon_->port()) + " +tries=1 +time=3 " + args);
  }

  std::unique_ptr<FakeUpstream> upstream_;
  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_F(ForwardingTest, MissGoesUpstreamRepeatIsServedFromCacheWithLowerTtl) {
  upstream_->set_ttl(300);
  StartDaemon();
  dns::Message first = Ask("www.example.com");
  EXPECT_EQ(first.rcode(), dns::kNoError);
  ASSERT_EQ(first.answers.size(), 1u);
  EXPECT_EQ(first.answers[0].ttl, 300u);
  EXPECT_EQ(upstream_->queries_for("www.example.com."), 1);

  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // TTLs count in whole seconds
  dns::Message second = Ask("www.example.com");
  ASSERT_EQ(second.answers.size(), 1u);
  EXPECT_LT(second.answers[0].ttl, 300u);
  EXPECT_GE(second.answers[0].ttl, 297u);
  EXPECT_EQ(second.answers[0].rdata, first.answers[0].rdata);
  EXPECT_EQ(upstream_->queries_for("www.example.com."), 1);  // no second upstream query
}

TEST_F(ForwardingTest, DigSeesCacheFlagsAndClientCase) {
  StartDaemon();
  std::string out = Dig("WwW.ExAmPlE.CoM A");
  EXPECT_THAT(out, HasSubstr("status: NOERROR"));
  EXPECT_THAT(out, HasSubstr("flags: qr rd ra;"));  // RA set, RD echoed, never AA
  EXPECT_THAT(out, HasSubstr(";WwW.ExAmPlE.CoM.\t\tIN\tA"));
  EXPECT_THAT(out, HasSubstr("192.0.2.1"));
  std::string again = Dig("www.example.com A +norecurse");
  EXPECT_THAT(again, HasSubstr("flags: qr ra;"));  // RD not set by the client: not echoed
  EXPECT_EQ(upstream_->queries(), 1);
}

TEST_F(ForwardingTest, NxdomainIsCachedWithSoa) {
  StartDaemon();
  dns::Message a = Ask("nxname.example");
  EXPECT_EQ(a.rcode(), dns::kNxDomain);
  ASSERT_EQ(a.authority.size(), 1u);
  EXPECT_EQ(a.authority[0].type, dns::kTypeSOA);
  EXPECT_EQ(a.authority[0].ttl, 60u);  // min(SOA TTL 300, MINIMUM 60)
  dns::Message b = Ask("NXNAME.example");
  EXPECT_EQ(b.rcode(), dns::kNxDomain);
  EXPECT_EQ(upstream_->queries_for("nxname.example."), 1);
  // NODATA too.
  EXPECT_EQ(Ask("nodata.example").rcode(), dns::kNoError);
  EXPECT_EQ(Ask("nodata.example").answers.size(), 0u);
  EXPECT_EQ(upstream_->queries_for("nodata.example."), 1);
}

TEST_F(ForwardingTest, ConcurrentIdenticalMissesMakeOneUpstreamQuery) {
  upstream_->set_delay_ms(300);
  StartDaemon();
  constexpr int kClients = 500;
  std::vector<int> fds;
  for (int i = 0; i < kClients; ++i) {
    int fd = ConnectLoopback(SOCK_DGRAM, daemon_->port());
    ASSERT_GE(fd, 0);
    QueryOptions o;
    o.id = static_cast<uint16_t>(1000 + i);
    // Every client spells the name its own way; each gets its own case back.
    std::string name = (i % 2 ? "Shared.Example" : "shared.EXAMPLE");
    auto q = MakeQuery(name, dns::kTypeA, o);
    ASSERT_EQ(send(fd, q.data(), q.size(), 0), static_cast<ssize_t>(q.size()));
    fds.push_back(fd);
  }
  for (int i = 0; i < kClients; ++i) {
    pollfd p{fds[i], POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 3000), 1) << "client " << i << " got no answer";
    std::vector<uint8_t> buf(1500);
    ssize_t n = recv(fds[i], buf.data(), buf.size(), 0);
    ASSERT_GT(n, 0);
    buf.resize(static_cast<size_t>(n));
    dns::Message m = Parse(buf);
    EXPECT_EQ(m.id, 1000 + i);
    EXPECT_EQ(dns::NameToText(m.questions[0].name), i % 2 ? "Shared.Example." : "shared.EXAMPLE.");
    ASSERT_EQ(m.answers.size(), 1u);
    close(fds[i]);
  }
  EXPECT_EQ(upstream_->queries_for("shared.example."), 1);
}

TEST_F(ForwardingTest, TruncatedOverUdpThenFullOverTcp) {
  StartDaemon();
  std::string udp = Dig("bigname.example A +noedns +ignore");
  EXPECT_THAT(udp, HasSubstr("flags: qr tc rd ra;"));
  EXPECT_THAT(udp, HasSubstr("ANSWER: 0"));
  std::string tcp = RunCommand("kdig @127.0.0.1 -p " + std::to_string(daemon_->port()) + " +tcp bigname.example A");
  EXPECT_THAT(tcp, HasSubstr("status: NOERROR"));
  EXPECT_THAT(tcp, HasSubstr("ANSWER: 40"));
  // dig without +ignore retries over TCP by itself and gets everything.
  EXPECT_THAT(Dig("bigname.example A +noedns"), HasSubstr("ANSWER: 40"));
  // A client with a 1232-octet EDNS buffer gets it all over UDP.
  dns::Message m = Ask("bigname.example");
  EXPECT_EQ(m.answers.size(), 40u);
  EXPECT_EQ(upstream_->queries_for("bigname.example."), 1);
  EXPECT_EQ(upstream_->tcp_queries(), 0);  // a 1232-octet EDNS answer is taken over UDP
}

TEST_F(ForwardingTest, UpstreamTruncationIsRetriedOverTcp) {
  upstream_->set_mode(FakeUpstream::Mode::kTruncateUdp);
  StartDaemon();
  dns::Message m = Ask("tc.example");
  EXPECT_EQ(m.rcode(), dns::kNoError);
  EXPECT_EQ(m.answers.size(), 1u);
  EXPECT_FALSE(m.flags & dns::kFlagTC);
  EXPECT_EQ(upstream_->tcp_queries(), 1);
}

TEST_F(ForwardingTest, AnswerForAnotherQuestionIsNotAccepted) {
  upstream_->set_mode(FakeUpstream::Mode::kWrongThenRight);
  StartDaemon();
  dns::Message m = Ask("right.example");
  ASSERT_EQ(m.questions.size(), 1u);
  EXPECT_EQ(dns::NameToText(m.questions[0].name), "right.example.");
  ASSERT_EQ(m.answers.size(), 1u);
  EXPECT_EQ(dns::NameToText(m.answers[0].name), "right.example.");
}

TEST_F(ForwardingTest, OnlyWrongAnswersGiveServfailAndNothingCached) {
  upstream_->set_mode(FakeUpstream::Mode::kWrongQuestion);
  TempDir dir;
  // Failure mapping only: no SERVFAIL caching, no breaker (tested elsewhere).
  StartDaemon({"--config", dir.Write("c.toml", "[upstream]\ntimeout_ms = 300\nattempts = 1\nbreaker_failures = 100\n"
                                               "[serve_stale]\nservfail_ttl = 0\n")});
  QueryOptions o;
  auto a = UdpExchange("127.0.0.1", daemon_->port(), MakeQuery("right.example", dns::kTypeA, o), 5000);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(Parse(*a).rcode(), dns::kServFail);
  upstream_->set_mode(FakeUpstream::Mode::kAnswer);
  EXPECT_EQ(Ask("right.example").answers.size(), 1u);
}

TEST_F(ForwardingTest, UpstreamFailuresBecomeServfailWithEde) {
  TempDir dir;
  // Failure mapping only: no SERVFAIL caching, no breaker (tested elsewhere).
  std::string cfg = dir.Write("c.toml", "[upstream]\ntimeout_ms = 200\nattempts = 1\nbreaker_failures = 100\n"
                                        "[serve_stale]\nservfail_ttl = 0\n");
  StartDaemon({"--config", cfg});
  for (auto mode : {FakeUpstream::Mode::kServFail, FakeUpstream::Mode::kDrop, FakeUpstream::Mode::kGarbage}) {
    upstream_->set_mode(mode);
    std::string name = "fail" + std::to_string(static_cast<int>(mode)) + ".example";
    auto start = std::chrono::steady_clock::now();
    dns::Message m = Ask(name);
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(m.rcode(), dns::kServFail) << name;
    EXPECT_LT(took, std::chrono::milliseconds(1500)) << name;
    if (mode != FakeUpstream::Mode::kServFail) {
      ASSERT_TRUE(m.edns.has_value());
      ASSERT_EQ(m.edns->options.size(), 1u);
      EXPECT_EQ(m.edns->options[0].code, dns::kOptionExtendedError);
    }
  }
  // REFUSED is relayed.
  upstream_->set_mode(FakeUpstream::Mode::kRefused);
  EXPECT_EQ(Ask("refused.example").rcode(), dns::kRefused);
  // Failures are not cached: the upstream recovers, the answer comes back.
  upstream_->set_mode(FakeUpstream::Mode::kAnswer);
  int before = upstream_->queries_for("fail1.example.");
  EXPECT_EQ(Ask("fail1.example").answers.size(), 1u);
  EXPECT_EQ(upstream_->queries_for("fail1.example."), before + 1);
  EXPECT_TRUE(daemon_->alive());
}

TEST_F(ForwardingTest, SlowUpstreamIsAwaited) {
  upstream_->set_delay_ms(400);
  StartDaemon();
  dns::Message m = Ask("slow.example");
  EXPECT_EQ(m.rcode(), dns::kNoError);
  EXPECT_EQ(m.answers.size(), 1u);
}

TEST_F(ForwardingTest, PerZoneForwardingReachesTheRightUpstream) {
  auto cluster = FakeUpstream::Start();
  ASSERT_NE(cluster, nullptr);
  cluster->set_address(0x0a600001);  // 10.96.0.1
  TempDir dir;
  std::string cfg = dir.Write("zones.toml", "[[zone]]\nname = \"cluster.local\"\nservers = [\"" + cluster->address() +
                                                "\"]\n[[zone]]\nname = \"10.in-addr.arpa\"\nservers = [\"" +
                                                cluster->address() + "\"]\n[[zone]]\nname = \".\"\nservers = [\"" +
                                                upstream_->address() + "\"]\n");
  daemon_ = DaemonProcess::Start({"--config", cfg});
  ASSERT_NE(daemon_->port(), 0) << daemon_->log();
  dns::Message svc = Ask("kubernetes.default.svc.cluster.local");
  ASSERT_EQ(svc.answers.size(), 1u);
  EXPECT_EQ(svc.answers[0].rdata, std::string("\x0a\x60\x00\x01", 4));
  EXPECT_EQ(cluster->queries_for("kubernetes.default.svc.cluster.local."), 1);
  EXPECT_EQ(upstream_->queries(), 0);
  Ask("1.0.96.10.in-addr.arpa", dns::kTypePTR);
  EXPECT_EQ(cluster->queries_for("1.0.96.10.in-addr.arpa."), 1);
  dns::Message ext = Ask("www.example.com");
  EXPECT_EQ(ext.answers[0].rdata, std::string("\xc0\x00\x02\x01", 4));
  EXPECT_EQ(upstream_->queries_for("www.example.com."), 1);
  EXPECT_EQ(cluster->queries(), 2);
}

// Per-zone knobs (issue 14), on the real daemon with dig: the cluster zone
// forwarded over TCP only (NodeLocal DNSCache's force_tcp) and with AAAA
// filtered; the root zone with the defaults (prefer_udp, no filter).
TEST_F(ForwardingTest, AZoneOverTcpOnlyAndWithAaaaFiltered) {
  auto cluster = FakeUpstream::Start();
  ASSERT_NE(cluster, nullptr);
  TempDir dir;
  std::string cfg = dir.Write("zones.toml", "[[zone]]\nname = \"cluster.local\"\nservers = [\"" + cluster->address() +
                                                "\"]\ntransport = \"tcp\"\nfilter_aaaa = true\n"
                                                "[[zone]]\nname = \".\"\nservers = [\"" + upstream_->address() + "\"]\n");
  daemon_ = DaemonProcess::Start({"--config", cfg, "--log-level", "warn"});
  ASSERT_NE(daemon_->port(), 0) << daemon_->log();

  std::string aaaa = Dig("web.default.svc.cluster.local AAAA");
  EXPECT_THAT(aaaa, HasSubstr("status: NOERROR"));
  EXPECT_THAT(aaaa, HasSubstr("ANSWER: 0, AUTHORITY: 1"));
  EXPECT_THAT(aaaa, HasSubstr("cluster.local.\t\t60\tIN\tSOA\tnodedns.invalid. hostmaster.nodedns.invalid. 1 3600 600 86400 60"));
  EXPECT_EQ(cluster->queries(), 0) << "a filtered AAAA query is never asked upstream";
  // AAAA outside the zone is forwarded as usual.
  EXPECT_THAT(Dig("www.example.com AAAA"), HasSubstr("ANSWER: 1,"));
  EXPECT_EQ(upstream_->queries_for("www.example.com."), 1);

  // Each loop (the UDP worker and the TCP worker) has its own connection,
  // opened by its start-up probe of the zone.
  for (int i = 0; i < 200 && cluster->probes() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(cluster->probes(), 2);
  EXPECT_EQ(cluster->tcp_connections(), 2);
  for (int i = 0; i < 5; ++i) {
    EXPECT_THAT(Dig("svc" + std::to_string(i) + ".default.svc.cluster.local A"), HasSubstr("ANSWER: 1,"));
  }
  EXPECT_EQ(cluster->tcp_queries(), 5);
  EXPECT_EQ(cluster->udp_queries(), 0);
  EXPECT_EQ(cluster->tcp_connections(), 2) << "the connection is kept open and reused";
  EXPECT_EQ(upstream_->tcp_queries(), 0);
  // The cluster DNS closes its idle connection: the next miss reconnects.
  cluster->CloseTcpConnections();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_THAT(Dig("after-close.default.svc.cluster.local A"), HasSubstr("ANSWER: 1,"));
  EXPECT_EQ(cluster->tcp_connections(), 3);
  EXPECT_EQ(cluster->udp_queries(), 0);
  EXPECT_THAT(RunCommand("curl -s http://" + daemon_->metrics_address() + "/metrics"),
              HasSubstr("nodedns_aaaa_filtered_total 1"));
}

// "Last known good" (off by default): while the zone is unhealthy, an
// NXDOMAIN does not replace a positive entry.
TEST_F(ForwardingTest, LastKnownGoodKeepsPositiveAnswersWhileTheZoneIsUnhealthy) {
  upstream_->set_ttl(1);
  TempDir dir;
  auto config = [&](bool lkg) {
    return dir.Write(lkg ? "lkg.toml" : "plain.toml",
                     std::string("[upstream]\ndegraded_hold_ms = 3000\nbreaker_failures = 100\n"
                                 "[serve_stale]\nfailure_recheck_ms = 0\nservfail_ttl = 0\n"
                                 "[[zone]]\nname = \".\"\nservers = [\"") +
                         upstream_->address() + "\"]\nlast_known_good = " + (lkg ? "true" : "false") + "\n");
  };
  for (bool lkg : {true, false}) {
    SCOPED_TRACE(lkg ? "last_known_good = true" : "last_known_good = false");
    upstream_->set_mode(FakeUpstream::Mode::kAnswer);
    daemon_ = DaemonProcess::Start({"--config", config(lkg)});
    ASSERT_NE(daemon_->port(), 0) << daemon_->log();
    ASSERT_EQ(Ask("svc.example").answers.size(), 1u);
    ASSERT_EQ(Ask("other.example").answers.size(), 1u);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // both expired
    upstream_->set_mode(FakeUpstream::Mode::kServFail);
    Ask("other.example");  // a failed refresh: the zone is degraded for 3 s
    upstream_->set_mode(FakeUpstream::Mode::kNxAll);  // the control plane now lies
    dns::Message m = Ask("svc.example");  // stale at once; refreshed in the background
    EXPECT_EQ(m.rcode(), dns::kNoError);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    dns::Message after = Ask("svc.example");
    if (lkg) {
      EXPECT_EQ(after.rcode(), dns::kNoError);  // the positive entry was kept
      EXPECT_EQ(after.answers.size(), 1u);
    } else {
      EXPECT_EQ(after.rcode(), dns::kNxDomain);  // replaced by the NXDOMAIN
    }
    EXPECT_EQ(daemon_->Stop(), 0) << daemon_->log();
    daemon_.reset();
  }
}

TEST_F(ForwardingTest, UpstreamQueriesCarryRandomIdsPortsAndCase) {
  StartDaemon();
  for (int i = 0; i < 200; ++i) Ask("identity" + std::to_string(i) + ".example");
  std::set<uint16_t> ids;
  std::map<uint16_t, int> per_port;
  int queries = 0, mixed_case = 0;
  for (const auto& q : upstream_->log()) {
    if (q.type == dns::kTypeSOA) continue;  // the zone probe at start-up
    ++queries;
    ids.insert(q.id);
    ++per_port[q.source_port];
    mixed_case += q.qname_case != q.name;
  }
  ASSERT_EQ(queries, 200);
  // RFC 5452: an unpredictable ID and source port for every query, and the
  // name's letters in random case (DNS 0x20).
  EXPECT_GE(ids.size(), 190u);
  EXPECT_GE(per_port.size(), 195u);
  EXPECT_GE(mixed_case, 195);
}

TEST_F(ForwardingTest, DoAndCdArePassedUpstreamAndKeyedSeparately) {
  StartDaemon();
  QueryOptions plain, dnssec;
  dnssec.dnssec_ok = true;
  dnssec.checking_disabled = true;
  Ask("sec.example", dns::kTypeA, plain);
  dns::Message m = Ask("sec.example", dns::kTypeA, dnssec);
  ASSERT_TRUE(m.edns);
  EXPECT_TRUE(m.edns->dnssec_ok);
  EXPECT_TRUE(m.flags & dns::kFlagCD);
  EXPECT_EQ(upstream_->queries_for("sec.example."), 2);
  Ask("sec.example", dns::kTypeA, dnssec);
  EXPECT_EQ(upstream_->queries_for("sec.example."), 2);
}

}  // namespace
}  // namespace nodedns::testing
