// Protocol behaviour and robustness of the real binary: malformed input,
// early exits, TCP framing and pipelining, limits, shutdown, start-up errors.

#include <arpa/inet.h>
#include <signal.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <random>
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

class ProtocolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    upstream_ = FakeUpstream::Start();
    ASSERT_NE(upstream_, nullptr);
  }
  void StartDaemon(const std::string& extra_config = "") {
    std::vector<std::string> args = {"--upstream", upstream_->address(), "--log-level", "info"};
    // An empty file is refused (it would reset everything to the defaults):
    // without extra settings, no file at all.
    if (!extra_config.empty()) args.insert(args.end(), {"--config", dir_.Write("c.toml", extra_config)});
    daemon_ = DaemonProcess::Start(args);
    ASSERT_NE(daemon_->port(), 0) << daemon_->log();
  }
  void TearDown() override {
    if (daemon_ && daemon_->alive()) {
      EXPECT_EQ(daemon_->Stop(), 0) << daemon_->log();
    }
  }
  std::optional<std::vector<uint8_t>> Udp(const std::vector<uint8_t>& q, int timeout_ms = 1000) {
    return UdpExchange("127.0.0.1", daemon_->port(), q, timeout_ms);
  }
  void ExpectStillServing() {
    auto a = Udp(MakeQuery("alive.example", dns::kTypeA));
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(Parse(*a).rcode(), dns::kNoError);
  }

  TempDir dir_;
  std::unique_ptr<FakeUpstream> upstream_;
  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_F(ProtocolTest, ShortPacketsAndResponsesAreDropped) {
  StartDaemon();
  EXPECT_FALSE(Udp({1, 2, 3}, 300).has_value());
  auto resp = MakeQuery("x.example", dns::kTypeA);
  resp[2] |= 0x80;  // QR=1
  EXPECT_FALSE(Udp(resp, 300).has_value());
  ExpectStillServing();
}

TEST_F(ProtocolTest, EarlyExitRcodes) {
  StartDaemon();
  auto notify = MakeQuery("x.example", dns::kTypeSOA);
  notify[2] = static_cast<uint8_t>((notify[2] & 0x87) | (4 << 3));  // opcode NOTIFY
  notify[3] = static_cast<uint8_t>(notify[3] | 0x10);  // and CD
  auto a = Udp(notify);
  ASSERT_TRUE(a);
  EXPECT_EQ(Parse(*a).rcode(), dns::kNotImp);
  // RA and CD are defined for QUERY only (real binary, real socket).
  EXPECT_EQ(Parse(*a).flags & (dns::kFlagRA | dns::kFlagCD), 0);

  auto two = MakeQuery("x.example", dns::kTypeA, {.edns = false});
  two[5] = 2;  // QDCOUNT 2
  a = Udp(two);
  ASSERT_TRUE(a);
  EXPECT_EQ((*a)[3] & 0x0f, dns::kFormErr);
  EXPECT_EQ(dns::Read16(a->data()), 0x1234);

  a = Udp(MakeQuery("x.example", dns::kTypeA, {.edns_version = 1}));
  ASSERT_TRUE(a);
  dns::Message m = Parse(*a);
  EXPECT_EQ(m.rcode(), dns::kBadVers);
  ASSERT_TRUE(m.edns);
  EXPECT_EQ(m.edns->version, 0);

  a = Udp(MakeQuery("x.example", dns::kTypeAXFR));
  ASSERT_TRUE(a);
  EXPECT_EQ(Parse(*a).rcode(), dns::kNotImp);
  EXPECT_EQ(upstream_->queries(), 0);  // none of these went upstream
  ExpectStillServing();
}

TEST_F(ProtocolTest, RandomGarbageNeverCrashes) {
  StartDaemon();
  std::mt19937 rng(42);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(daemon_->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto base = MakeQuery("fuzz.example", dns::kTypeA);
  for (int i = 0; i < 3000; ++i) {
    std::vector<uint8_t> p;
    if (i % 2) {
      p.resize(rng() % 600);
      for (auto& b : p) b = static_cast<uint8_t>(rng());
    } else {  // mutate a valid query: far more interesting inputs
      p = base;
      for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k) p[rng() % p.size()] = static_cast<uint8_t>(rng());
      p.resize(p.size() - rng() % 5);
    }
    if (p.size() > 2) p[2] &= 0x7f;  // keep QR=0 so the daemon has to look further
    sendto(fd, p.data(), p.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    if (i % 100 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  close(fd);
  ExpectStillServing();
  EXPECT_TRUE(daemon_->alive());
}

TEST_F(ProtocolTest, TcpPipelinedQueriesEachGetTheirOwnAnswer) {
  upstream_->set_delay_ms(100);
  StartDaemon();
  // Warm one name so answers come back out of order: the cached one first.
  ASSERT_TRUE(Udp(MakeQuery("cached.example", dns::kTypeA)));
  std::vector<std::vector<uint8_t>> qs = {MakeQuery("p1.example", dns::kTypeA, {.id = 1}),
                                          MakeQuery("p2.example", dns::kTypeAAAA, {.id = 2}),
                                          MakeQuery("cached.example", dns::kTypeA, {.id = 3})};
  auto answers = TcpPipeline("127.0.0.1", daemon_->port(), qs);
  ASSERT_EQ(answers.size(), 3u);
  EXPECT_EQ(Parse(answers[0]).id, 3);  // the cache hit overtakes the misses
  std::set<int> ids;
  for (auto& a : answers) {
    dns::Message m = Parse(a);
    ids.insert(m.id);
    ASSERT_EQ(m.answers.size(), 1u);
    if (m.id == 2) {
      EXPECT_EQ(m.answers[0].type, dns::kTypeAAAA);
    }
  }
  EXPECT_EQ(ids, (std::set<int>{1, 2, 3}));
}

TEST_F(ProtocolTest, TcpBadFrameClosesOnlyThatConnection) {
  StartDaemon();
  int fd = ConnectLoopback(SOCK_STREAM, daemon_->port());
  ASSERT_GE(fd, 0);
  uint8_t bad[] = {0, 3, 1, 2, 3};
  ASSERT_EQ(write(fd, bad, sizeof(bad)), 5);
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1);
  char c;
  EXPECT_EQ(read(fd, &c, 1), 0);  // closed by the server
  close(fd);
  ExpectStillServing();
}

TEST_F(ProtocolTest, TcpIdleTimeoutAndConnectionCap) {
  StartDaemon("[server]\ntcp_idle_timeout_ms = 300\nmax_tcp_connections = 2\n");
  auto connect_one = [&]() {
    int fd = ConnectLoopback(SOCK_STREAM, daemon_->port());
    EXPECT_GE(fd, 0);
    return fd;
  };
  auto closed_within = [](int fd, int ms) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, ms) != 1) return false;
    char c;
    return read(fd, &c, 1) == 0;
  };
  int a = connect_one(), b = connect_one();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  int third = connect_one();
  EXPECT_TRUE(closed_within(a, 1000));       // over the cap: the longest idle is cut at once
  EXPECT_FALSE(closed_within(third, 100));   // not idle for long yet
  EXPECT_TRUE(closed_within(b, 2000));       // idle timeout
  EXPECT_TRUE(closed_within(third, 2000));
  for (int fd : {a, b, third}) close(fd);
  // After the idle ones are gone, new connections are served again.
  auto ans = TcpExchange("127.0.0.1", daemon_->port(), MakeQuery("after.example", dns::kTypeA));
  ASSERT_TRUE(ans.has_value());
}

TEST_F(ProtocolTest, GracefulShutdownAnswersQueriesInFlight) {
  upstream_->set_delay_ms(500);
  StartDaemon();
  std::optional<std::vector<uint8_t>> answer;
  std::thread client([&] { answer = Udp(MakeQuery("inflight.example", dns::kTypeA), 3000); });
  // Wait until the query has reached the upstream, then stop the daemon.
  for (int i = 0; i < 200 && upstream_->queries() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(upstream_->queries(), 1);
  EXPECT_EQ(daemon_->Stop(), 0) << daemon_->log();
  client.join();
  ASSERT_TRUE(answer.has_value());
  dns::Message m = Parse(*answer);
  EXPECT_EQ(m.rcode(), dns::kNoError);
  EXPECT_EQ(m.answers.size(), 1u);
}

TEST_F(ProtocolTest, SigintStopsCleanlyToo) {
  StartDaemon();
  ExpectStillServing();
  EXPECT_EQ(daemon_->Stop(SIGINT), 0) << daemon_->log();
  EXPECT_THAT(daemon_->log(), HasSubstr("signal 2 received: shutting down"));
  EXPECT_THAT(daemon_->log(), HasSubstr("stopped"));
}

TEST_F(ProtocolTest, ListensOnSeveralAddressesIncludingIpv6) {
  int probe = socket(AF_INET6, SOCK_DGRAM, 0);
  sockaddr_in6 a6{};
  a6.sin6_family = AF_INET6;
  a6.sin6_addr = in6addr_loopback;
  bool have_v6 = probe >= 0 && bind(probe, reinterpret_cast<sockaddr*>(&a6), sizeof(a6)) == 0;
  if (probe >= 0) close(probe);
  if (!have_v6) GTEST_SKIP() << "no IPv6 loopback on this machine";
  daemon_ = DaemonProcess::Start({"--listen", "127.0.0.1:0", "--listen", "[::1]:0", "--upstream",
                                  upstream_->address()}, /*listen_in_args=*/true);
  ASSERT_EQ(daemon_->addresses().size(), 2u) << daemon_->log();
  uint16_t v6port = static_cast<uint16_t>(std::stoi(daemon_->addresses()[1].substr(daemon_->addresses()[1].rfind(':') + 1)));
  auto a = UdpExchange("::1", v6port, MakeQuery("six.example", dns::kTypeAAAA));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(Parse(*a).answers.size(), 1u);
  auto t = TcpExchange("::1", v6port, MakeQuery("six.example", dns::kTypeAAAA));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(upstream_->queries(), 1);
  std::string dig = RunCommand("dig @::1 -p " + std::to_string(v6port) + " +tries=1 +time=2 six.example AAAA");
  EXPECT_THAT(dig, HasSubstr("2001:db8::1"));
}

TEST(StartupTest, BadConfigIsRejectedWithFileLineAndNonZeroExit) {
  TempDir dir;
  std::string cfg = dir.Write("bad.toml", "[server]\nlisten = [\"127.0.0.1:0\"]\n\n[cache]\nmax_ttl = -5\n");
  int code = 0;
  std::string out = RunCommand(NodednsBinary() + " --config " + cfg + " 2>&1", &code);
  EXPECT_NE(code, 0);
  EXPECT_THAT(out, HasSubstr(cfg + ":5: 'cache.max_ttl' must be between 0 and 604800, got -5"));

  out = RunCommand(NodednsBinary() + " --check-config " + cfg + " 2>&1", &code);
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr(cfg + ":5:"));
  std::string good = dir.Write("good.toml", "[server]\nlisten = [\"127.0.0.1:0\"]\n");
  out = RunCommand(NodednsBinary() + " --check-config " + good + " 2>&1", &code);
  EXPECT_EQ(code, 0) << out;

  // What start-up would refuse on this host, --check-config refuses too
  // (issue 14): an unknown control socket owner or group, an unknown --user,
  // a resolv.conf without a usable nameserver.
  std::string owner = dir.Write("owner.toml", "[control]\nowner = \"no-such-user-nodedns\"\n");
  out = RunCommand(NodednsBinary() + " --check-config " + owner + " 2>&1", &code);
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr("control socket owner: no user 'no-such-user-nodedns'"));
  std::string group = dir.Write("group.toml", "[control]\ngroup = \"no-such-group-nodedns\"\n");
  out = RunCommand(NodednsBinary() + " --check-config " + group + " 2>&1", &code);
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr("control socket group: no group 'no-such-group-nodedns'"));
  out = RunCommand(NodednsBinary() + " --check-config " + good + " --user no-such-user-nodedns 2>&1", &code);
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr("--user: no user 'no-such-user-nodedns'"));
  std::string no_ns = dir.Write("resolv.conf", "search example\n");
  std::string rc = dir.Write("rc.toml", "[[zone]]\nname = \".\"\nservers = [\"resolv.conf\"]\n");
  out = RunCommand(NodednsBinary() + " --check-config " + rc + " --resolv-conf " + no_ns + " 2>&1", &code);
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr("lists no usable nameserver"));
  // The same files start nowhere: start-up says the same.
  out = RunCommand(NodednsBinary() + " --config " + owner + " --listen 127.0.0.1:0 --control-socket " + dir.path() +
                       "/c.sock 2>&1", &code);
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr("control socket owner: no user 'no-such-user-nodedns'"));
  // An address that is not this host's is a warning (the file may be for
  // another machine), with exit status 0; [interface] setup silences it.
  std::string foreign = dir.Write("foreign.toml", "[server]\nlisten = [\"192.0.2.77:53\"]\n");
  out = RunCommand(NodednsBinary() + " --check-config " + foreign + " 2>&1", &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("warning: server.listen 192.0.2.77:53"));
  EXPECT_THAT(out, HasSubstr("start-up would fail on this host"));
  std::string health = dir.Write("health.toml", "[health]\nlisten = \"192.0.2.78:8080\"\n");
  out = RunCommand(NodednsBinary() + " --check-config " + health + " 2>&1", &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("warning: health.listen 192.0.2.78:8080"));
  std::string setup = dir.Write("setup.toml", "[server]\nlisten = [\"192.0.2.77:53\"]\n[interface]\nsetup = true\n");
  out = RunCommand(NodednsBinary() + " --check-config " + setup + " 2>&1", &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, ::testing::Not(HasSubstr("warning")));

  // The embedded default config, printed, is a valid --config file and is
  // what runs without one (installed users have no source tree).
  out = RunCommand(NodednsBinary() + " --print-default-config", &code);
  EXPECT_EQ(code, 0);
  EXPECT_THAT(out, HasSubstr("[server]\nlisten = [\"127.0.0.1:5300\"]"));
  EXPECT_THAT(out, HasSubstr("limit_floor_percent = 5"));
  std::string printed = dir.Write("printed.toml", out);
  out = RunCommand(NodednsBinary() + " --check-config " + printed + " 2>&1", &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(RunCommand(NodednsBinary() + " --help", &code), HasSubstr("--print-default-config"));

  out = RunCommand(NodednsBinary() + " --listen 127.0.0.1 2>&1", &code);
  EXPECT_NE(code, 0);
  EXPECT_THAT(out, HasSubstr("--listen: missing port"));
  out = RunCommand(NodednsBinary() + " --frobnicate 2>&1", &code);
  EXPECT_NE(code, 0);
  EXPECT_THAT(out, HasSubstr("unknown flag '--frobnicate'"));
  out = RunCommand(NodednsBinary() + " --version", &code);
  EXPECT_EQ(code, 0);
  EXPECT_THAT(out, HasSubstr("nodedns "));
}

TEST(StartupTest, AddressInUseIsAClearError) {
  auto upstream = FakeUpstream::Start();
  int code = 0;
  // The fake upstream holds its port without SO_REUSEPORT: binding it fails.
  std::string out = RunCommand(NodednsBinary() + " --listen " + upstream->address() + " --upstream 127.0.0.1:9 2>&1",
                               &code);
  EXPECT_NE(code, 0);
  EXPECT_THAT(out, HasSubstr("bind udp " + upstream->address()));
}

}  // namespace
}  // namespace nodedns::testing
