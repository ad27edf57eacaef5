// Pinned names ([[zone]] pin) in the real daemon against a fake upstream:
// resolved at start-up without a client asking, never evicted by a flood of
// other names, answered stale with EDE 3 through an outage, kept across a
// restart by the snapshot, and shown in `dnsctl dump` and `dnsctl stats`.
// Knobs set here: [cache] max_entries = 64 (eviction pressure is the
// subject) and pin_refresh_min_s = 1 (a 2 s TTL refreshed within the test).

#include <chrono>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/dns/constants.h"
#include "tests/support/daemon_process.h"
#include "tests/support/dns_client.h"
#include "tests/support/fake_upstream.h"

namespace nodedns::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class PinsIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    upstream_ = FakeUpstream::Start();
    ASSERT_NE(upstream_, nullptr);
    upstream_->set_ttl(2);
    config_ = dir_.Write("pins.toml", "[cache]\nmax_entries = 64\nshards = 1\npin_refresh_min_s = 1\n"
                                      "[upstream]\ntimeout_ms = 300\n"
                                      "[[zone]]\nname = \".\"\nservers = [\"" + upstream_->address() + "\"]\n"
                                      "pin = [\"kubernetes.default.svc.cluster.local\", \"Registry.Example\"]\n");
  }
  void Start() {
    daemon_ = DaemonProcess::Start({"--config", config_, "--snapshot", dir_.path() + "/cache.snap"});
    ASSERT_NE(daemon_->port(), 0) << daemon_->log();
  }
  std::string Dnsctl(std::vector<std::string> args) {
    std::string out;
    EXPECT_EQ(daemon_->Dnsctl(args, &out), 0) << out;
    return out;
  }
  std::string Dig(const std::string& args) {
    return RunCommand("dig @127.0.0.1 -p " + std::to_string(daemon_->port()) + " +tries=1 +time=3 " + args);
  }
  // Waits (up to 5 s) until `dnsctl dump` shows `want` for `name`.
  bool DumpShows(const std::string& name, const std::string& want) {
    for (int i = 0; i < 100; ++i) {
      if (Dnsctl({"dump", "--name", name}).find(want) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  TempDir dir_;
  std::string config_;
  std::unique_ptr<FakeUpstream> upstream_;
  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_F(PinsIntegrationTest, ResolvedAtStartKeptUnderFloodAndOutageAndAcrossRestart) {
  Start();
  // Resolved at start-up: nobody asked.
  EXPECT_TRUE(DumpShows("kubernetes.default.svc.cluster.local", "A positive fresh"))
      << Dnsctl({"dump"}) << daemon_->log();
  EXPECT_GE(upstream_->queries_for("registry.example."), 1);
  EXPECT_THAT(Dnsctl({"dump", "--name", "registry.example"}), HasSubstr(" pinned "));

  // Kept fresh whatever their popularity: after 5 TTLs, still fresh, and
  // asked upstream again without any client.
  int before = upstream_->queries_for("kubernetes.default.svc.cluster.local.");
  std::this_thread::sleep_for(std::chrono::seconds(5));
  EXPECT_GE(upstream_->queries_for("kubernetes.default.svc.cluster.local.") - before, 2);
  EXPECT_THAT(Dnsctl({"dump", "--name", "kubernetes.default.svc.cluster.local"}), HasSubstr("A positive fresh"));

  // A flood of other names through a 64-entry cache.
  for (int i = 0; i < 1000; ++i) {
    auto a = UdpExchange("127.0.0.1", daemon_->port(), MakeQuery("flood" + std::to_string(i) + ".example", dns::kTypeA));
    ASSERT_TRUE(a.has_value()) << i;
  }
  std::string stats = Dnsctl({"stats"});
  EXPECT_THAT(stats, HasSubstr("pinned      4 keys:"));
  EXPECT_THAT(Dnsctl({"dump", "--name", "kubernetes.default.svc.cluster.local"}), HasSubstr(" pinned "));
  EXPECT_THAT(Dnsctl({"dump", "--name", "flood1.example"}), HasSubstr("0 entries"));  // evicted

  // Outage: the upstream stops answering. The pinned name, expired, is
  // answered stale with EDE 3 (Stale Answer).
  upstream_->set_mode(FakeUpstream::Mode::kDrop);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  std::string out = Dig("kubernetes.default.svc.cluster.local A");
  EXPECT_THAT(out, HasSubstr("status: NOERROR"));
  EXPECT_THAT(out, HasSubstr("ANSWER: 1,"));
  EXPECT_THAT(out, HasSubstr("EDE: 3"));

  // Across a restart: the snapshot has it, the upstream is still down.
  ASSERT_EQ(daemon_->Stop(), 0) << daemon_->log();
  Start();
  out = Dig("registry.example A");
  EXPECT_THAT(out, HasSubstr("ANSWER: 1,"));
  EXPECT_THAT(out, HasSubstr("EDE: 3"));
  EXPECT_THAT(Dnsctl({"dump", "--name", "registry.example"}), HasSubstr(" pinned "));
  EXPECT_THAT(Dnsctl({"stats", "--json"}), HasSubstr("\"stale\": 4"));
  EXPECT_EQ(daemon_->Stop(), 0) << daemon_->log();
}

TEST_F(PinsIntegrationTest, APinOutsideItsZoneIsRefusedWithItsReason) {
  std::string bad = dir_.Write("bad.toml", "[[zone]]\nname = \"cluster.local\"\nservers = [\"127.0.0.1:1\"]\n"
                                           "pin = [\"registry.example\"]\n");
  std::string out;
  int rc = RunProgram({NodednsBinary(), "--check-config", bad}, &out);
  EXPECT_EQ(rc, 1);
  EXPECT_THAT(out, HasSubstr("pinned name 'registry.example.' is not under it"));
  EXPECT_THAT(out, Not(HasSubstr("OK")));
}

}  // namespace
}  // namespace nodedns::testing
