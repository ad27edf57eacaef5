// Zero-gap upgrades: a second nodedns starts on the same addresses
// (SO_REUSEPORT) and the same control socket while the first serves; the
// first hands over its snapshot and control socket, and on SIGTERM steers new
// queries to the successor, answers what it has, and exits. Under a steady
// query load, no query may be lost or fail.

#include <signal.h>

#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/dns/constants.h"
#include "tests/support/daemon_process.h"
#include "tests/support/dns_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/load_client.h"

namespace nodedns::testing {
namespace {

using ::testing::HasSubstr;
using std::chrono::milliseconds;

std::vector<std::string> Names(int n) {
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) names.push_back("svc" + std::to_string(i) + ".upgrade.example");
  return names;
}

class UpgradeTest : public ::testing::TestWithParam<int> {};

TEST_P(UpgradeTest, NoQueryIsLostWhenASuccessorTakesOver) {
  const int workers = GetParam();
  auto upstream = FakeUpstream::Start();
  ASSERT_NE(upstream, nullptr);
  TempDir dir;
  std::string snap = dir.path() + "/cache.snap";
  std::string ctl = dir.path() + "/control.sock";
  auto args = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = {"--upstream", upstream->address(), "--snapshot", snap, "--control-socket", ctl,
                                  "--workers", std::to_string(workers)};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  auto first = DaemonProcess::Start(args({}));
  ASSERT_NE(first->port(), 0) << first->log();
  const std::vector<std::string> names = Names(200);
  {
    LoadClient warm(first->port(), names, 2000, milliseconds(100));
    warm.Join();
    for (const auto& r : warm.results()) ASSERT_EQ(r.rcode, dns::kNoError);
  }
  const int warm_queries = upstream->queries();

  // A steady load across the whole upgrade.
  LoadClient load(first->port(), names, 4000, milliseconds(3000));
  std::this_thread::sleep_for(milliseconds(500));
  auto second = DaemonProcess::Start(
      args({"--takeover", "--listen", "127.0.0.1:" + std::to_string(first->port())}), /*listen_in_args=*/true);
  ASSERT_EQ(second->port(), first->port()) << second->log();
  EXPECT_EQ(second->control_socket(), ctl);
  std::this_thread::sleep_for(milliseconds(500));
  EXPECT_EQ(first->Stop(SIGTERM), 0) << first->log();
  load.Join();

  int answered = 0;
  for (const auto& r : load.results()) {
    ASSERT_TRUE(r.answered) << "query " << &r - load.results().data() << " was lost\n"
                            << first->log() << "\n---\n" << second->log();
    EXPECT_EQ(r.rcode, dns::kNoError);
    EXPECT_EQ(r.rdata, std::string("\xc0\x00\x02\x01", 4));
    ++answered;
  }
  EXPECT_GE(answered, 11000);
  // The successor answered from the snapshot its predecessor wrote for it.
  EXPECT_EQ(upstream->queries(), warm_queries);
  EXPECT_THAT(first->log(), HasSubstr("handover: new queries go to the successor"));
  EXPECT_THAT(first->log(), HasSubstr("snapshot: left to the successor"));
  EXPECT_THAT(second->log(), HasSubstr("taking over from nodedns pid"));

  // The successor owns the control socket and has dropped the steering.
  std::string out;
  ASSERT_EQ(second->Dnsctl({"--json", "stats"}, &out), 0) << out;
  auto stats = nlohmann::json::parse(out);
  EXPECT_EQ(stats["snapshot"]["loaded_entries"], 200);
  for (int i = 0; i < 50 && second->log().find("has exited") == std::string::npos; ++i) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_THAT(second->log(), HasSubstr("handover: nodedns pid"));
  EXPECT_THAT(second->log(), HasSubstr("has exited"));
  // And serves alone.
  auto a = UdpExchange("127.0.0.1", second->port(), MakeQuery("svc7.upgrade.example", dns::kTypeA));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(Parse(*a).rcode(), dns::kNoError);
  EXPECT_EQ(second->Stop(), 0) << second->log();
}

INSTANTIATE_TEST_SUITE_P(Workers, UpgradeTest, ::testing::Values(1, 2));

TEST(UpgradeGraceTest, WaitsForASuccessorWithinTheGracePeriod) {
  auto upstream = FakeUpstream::Start();
  TempDir dir;
  std::string cfg = dir.Write("nodedns.toml", "[server]\nhandover_grace_ms = 2500\n[[zone]]\nname = \".\"\n"
                                              "servers = [\"" + upstream->address() + "\"]\n");
  std::string ctl = dir.path() + "/control.sock";
  auto first = DaemonProcess::Start({"--config", cfg, "--control-socket", ctl});
  ASSERT_NE(first->port(), 0) << first->log();
  kill(first->pid(), SIGTERM);  // no successor yet: it keeps serving
  std::this_thread::sleep_for(milliseconds(300));
  ASSERT_TRUE(first->alive());
  auto q = UdpExchange("127.0.0.1", first->port(), MakeQuery("during.grace.example", dns::kTypeA));
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(Parse(*q).rcode(), dns::kNoError);
  auto t0 = std::chrono::steady_clock::now();
  auto second = DaemonProcess::Start({"--config", cfg, "--control-socket", ctl, "--takeover", "--listen",
                                      "127.0.0.1:" + std::to_string(first->port())},
                                     /*listen_in_args=*/true);
  ASSERT_EQ(second->port(), first->port()) << second->log();
  EXPECT_EQ(first->Stop(0), 0) << first->log();  // exits by itself once the successor serves
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  EXPECT_EQ(second->Stop(), 0) << second->log();

  // Without a successor it stops when the grace period is over.
  auto alone = DaemonProcess::Start({"--config", cfg, "--control-socket", ctl});
  ASSERT_NE(alone->port(), 0) << alone->log();
  t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(alone->Stop(), 0);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, milliseconds(2400));
}

}  // namespace
}  // namespace nodedns::testing
