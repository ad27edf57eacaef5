// Forwarding-loop detection (issue 14), end to end: two real nodedns
// processes, the second forwarding to the first (a stub forwarding back to
// us, as systemd-resolved's 127.0.0.53 does when resolv.conf points nodedns
// at it), and a zone pointed at nodedns's own address.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/daemon_process.h"
#include "tests/support/dns_client.h"
#include "tests/support/endpoints.h"
#include "tests/support/fake_upstream.h"

namespace nodedns::testing {
namespace {

using ::testing::HasSubstr;

std::string ZoneTo(const std::string& server) {
  return "[[zone]]\nname = \".\"\nservers = [\"" + server + "\"]\n";
}

TEST(LoopTest, AZoneWhoseServerForwardsBackIsRefusedAtStartUp) {
  uint16_t a_port = FreeLoopbackPort();
  ASSERT_NE(a_port, 0);
  std::string a_address = "127.0.0.1:" + std::to_string(a_port);
  TempDir dir;
  // B forwards everything to A (not running yet: B's own probe is unanswered
  // and proves nothing, so B starts). Its breaker must not open while A is
  // missing, or B would answer A's probe SERVFAIL instead of forwarding it
  // (a loop of two nodedns is also held in check by their breakers; the
  // forwarders nodedns meets in practice, systemd-resolved or dnsmasq,
  // forward whatever they get).
  auto b = DaemonProcess::Start(
      {"--config", dir.Write("b.toml", "[upstream]\nbreaker_failures = 1000\n" + ZoneTo(a_address))});
  ASSERT_NE(b->port(), 0) << b->log();
  // A forwards to B: A's probe goes to B, B forwards it back to A.
  std::string b_address = "127.0.0.1:" + std::to_string(b->port());
  auto a = DaemonProcess::Start({"--config", dir.Write("a.toml", ZoneTo(b_address)), "--listen", a_address},
                                /*listen_in_args=*/true);
  EXPECT_EQ(a->Stop(0), 1) << a->log();
  EXPECT_THAT(a->log(), HasSubstr("zone '.': forwarding loop: a query for _nodedns-loop-"));
  EXPECT_THAT(a->log(), HasSubstr(" sent to " + b_address + " came back to this nodedns"));
  EXPECT_TRUE(b->alive());
  EXPECT_EQ(b->Stop(), 0) << b->log();
}

TEST(LoopTest, AReloadIntoALoopIsRefusedAndTheRunningZonesStay) {
  auto upstream = FakeUpstream::Start();
  ASSERT_NE(upstream, nullptr);
  TempDir dir;
  std::string cfg = dir.Write("a.toml", ZoneTo(upstream->address()));
  auto a = DaemonProcess::Start({"--config", cfg});
  ASSERT_NE(a->port(), 0) << a->log();
  // The start-up probe went to the zone's server, which answered: no loop.
  for (int i = 0; i < 100 && upstream->loop_probes() == 0; ++i) usleep(10000);
  EXPECT_EQ(upstream->loop_probes(), 1);
  std::string a_address = "127.0.0.1:" + std::to_string(a->port());
  auto b = DaemonProcess::Start({"--config", dir.Write("b.toml", ZoneTo(a_address))});
  ASSERT_NE(b->port(), 0) << b->log();
  std::string b_address = "127.0.0.1:" + std::to_string(b->port());
  const std::vector<std::pair<std::string, std::string>> loops = {
      {"through a forwarder", b_address},
      {"directly", a_address},
  };
  int n = 0;
  for (const auto& [how, server] : loops) {
    SCOPED_TRACE(how);
    dir.Write("a.toml", ZoneTo(server));
    std::string out;
    EXPECT_EQ(a->Dnsctl({"reload"}, &out), 1) << out;
    EXPECT_THAT(out, HasSubstr("forwarding loop: a query for _nodedns-loop-"));
    EXPECT_THAT(out, HasSubstr(" sent to " + server + " came back to this nodedns"));
    // The running zone still answers, from the fake upstream.
    auto answer = UdpExchange("127.0.0.1", a->port(), MakeQuery("after" + std::to_string(++n) + ".example", 1), 2000);
    ASSERT_TRUE(answer.has_value());
    EXPECT_EQ(Parse(*answer).answers.size(), 1u);
    EXPECT_EQ(upstream->queries_for("after" + std::to_string(n) + ".example."), 1);
  }
  std::string metrics = HttpGet(a->metrics_address(), "/metrics");
  EXPECT_THAT(metrics, HasSubstr("nodedns_reload_failures_total 2"));
  // Each probe that came back was answered here, not forwarded again.
  size_t at = metrics.find("\nnodedns_loop_probes_returned_total ");
  ASSERT_NE(at, std::string::npos);
  EXPECT_GE(std::stoi(metrics.substr(at + 36)), 2);
  // A reload without a loop is applied (the probe of the unchanged zone is
  // not even sent).
  dir.Write("a.toml", ZoneTo(upstream->address()));
  std::string out;
  EXPECT_EQ(a->Dnsctl({"reload"}, &out), 0) << out;
  EXPECT_EQ(a->Stop(), 0) << a->log();
  EXPECT_EQ(b->Stop(), 0) << b->log();
}

}  // namespace
}  // namespace nodedns::testing
