// What a careless or hostile local process can send or do to a running
// nodedns, against the real binary: wrongly typed and out-of-range control
// requests, hundreds of idle connections on the control socket and the HTTP
// endpoint, a stray release, a takeover by a nodedns that does not serve our
// addresses, and a second nodedns on our address. Through all of it the
// daemon must stay up and answer DNS.

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/dns/constants.h"
#include "tests/support/daemon_fixture.h"
#include "tests/support/daemon_process.h"
#include "tests/support/dns_client.h"
#include "tests/support/endpoints.h"
#include "tests/support/fake_upstream.h"

namespace nodedns::testing {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

class HostileInputTest : public DaemonFixture {
 protected:
  // A query for a new name, answered within `timeout_ms` (a cache miss
  // goes to the upstream: the whole path works).
  bool Answers(int timeout_ms = 1000) {
    auto a = UdpExchange("127.0.0.1", daemon_->port(),
                         MakeQuery("q" + std::to_string(++queries_) + ".example", dns::kTypeA), timeout_ms);
    return a.has_value() && Parse(*a).rcode() == dns::kNoError;
  }
  json Control(const std::string& line) { return ControlExchange(daemon_->control_socket(), line + "\n"); }

  int queries_ = 0;
};

TEST_F(HostileInputTest, EveryCommandWithWrongTypesAndRangesIsRefusedByField) {
  TempDir dir;
  StartDaemon({"--snapshot", dir.path() + "/cache.snap"});
  ASSERT_TRUE(Answers());
  const std::string release_fields = R"("pid":1,"protocol":1,"addresses":["127.0.0.1:53"])";
  // {request, what the error must say}
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"command":"stats","extra":1})", "stats: unknown field \"extra\""},
      {R"({"command":"upstreams","zone":"."})", "upstreams: unknown field \"zone\""},
      {R"({"command":"dump","limit":"10"})", "dump: \"limit\" must be an integer from 0 to 100000, got \"10\""},
      {R"({"command":"dump","limit":-5})", "dump: \"limit\" must be an integer from 0 to 100000, got -5"},
      {R"({"command":"dump","limit":1e9})", "dump: \"limit\" must be an integer from 0 to 100000"},
      {R"({"command":"dump","limit":null})", "dump: \"limit\" must be an integer from 0 to 100000, got null"},
      {R"({"command":"dump","name":7})", "dump: \"name\" must be a string"},
      {R"({"command":"dump","name":"a..b"})", "dump: \"name\" empty label"},
      {R"({"command":"flush","all":null})", "flush: \"all\" must be true or false, got null"},
      {R"({"command":"flush","all":"yes"})", "flush: \"all\" must be true or false, got \"yes\""},
      {R"({"command":"flush","all":{}})", "flush: \"all\" must be true or false, got {}"},
      {R"({"command":"flush","name":["x"]})", "flush: \"name\" must be a string"},
      {R"({"command":"flush"})", "flush: give \"name\" (a domain name) or \"all\": true"},
      {R"({"command":"reload","path":"/etc/passwd"})", "reload: unknown field \"path\""},
      {R"({"command":"snapshot","now":true})", "snapshot: unknown field \"now\""},
      {R"({"command":"health","verbose":1})", "health: unknown field \"verbose\""},
      {R"({"command":"handover"})", "handover: \"pid\" is missing"},
      {R"({"command":"handover","pid":"12","protocol":1})", "handover: \"pid\" must be an integer"},
      {R"({"command":"handover","pid":-1,"protocol":1})", "handover: \"pid\" must be an integer from 1 to 4194304"},
      {R"({"command":"handover","pid":99999999999,"protocol":1})", "handover: \"pid\" must be an integer"},
      {R"({"command":"handover","pid":12,"protocol":"1"})", "handover: \"protocol\" must be an integer"},
      {R"({"command":"release","pid":{},"protocol":1,"addresses":["127.0.0.1:53"]})",
       "release: \"pid\" must be an integer"},
      {R"({"command":"release","pid":1,"protocol":1,"addresses":"127.0.0.1:53"})", "release: \"addresses\" must be"},
      {R"({"command":"release","pid":1,"protocol":1,"addresses":[53]})", "release: \"addresses\" must be"},
      {R"({"command":"release",)" + release_fields + R"(,"force":true})", "release: unknown field \"force\""},
      {R"({"command":["stats"]})", "malformed request: \"command\" must be a string"},
      {R"({"command":"stats")", "malformed request"},
      {R"({"command":"dump","limit":)" + std::string(30000, '[') + std::string(30000, ']') + "}",
       "malformed request: nested more than 16 levels deep"},
  };
  for (const auto& [request, error] : cases) {
    json a = Control(request);
    ASSERT_TRUE(a.is_object()) << request << "\n" << daemon_->log();
    EXPECT_EQ(a["ok"], false) << request;
    EXPECT_THAT(a.value("error", ""), HasSubstr(error)) << request;
    ASSERT_TRUE(Answers()) << "after " << request << "\n" << daemon_->log();
  }
  EXPECT_TRUE(daemon_->alive());
  json s = Control(R"({"command":"stats"})");
  EXPECT_EQ(s["ok"], true);
  EXPECT_EQ(s["counters"]["queries"], static_cast<int>(cases.size()) + 1);
  EXPECT_EQ(s["connections"]["control"]["internal_errors"], 0);
  EXPECT_THAT(daemon_->log(), Not(HasSubstr("terminate called")));
}

TEST_F(HostileInputTest, IdleConnectionsNeitherStarveHealthNorDns) {
  StartDaemon();
  const int baseline_fds = OpenDescriptors(daemon_->pid());
  // 300 idle control connections and 100 idle HTTP connections, each
  // reopened as soon as the daemon cuts it, for the whole test.
  std::atomic<bool> done{false};
  std::atomic<int> reopened{0};
  std::thread holder([&] {
    std::vector<int> control(300, -1), http(100, -1);
    auto deadline = Clock::now() + std::chrono::seconds(20);
    while (!done && Clock::now() < deadline) {
      auto refill = [&](std::vector<int>& fds, auto connect) {
        for (int& fd : fds) {
          if (fd >= 0 && !ClosedByPeer(fd)) continue;
          if (fd >= 0) {
            close(fd);
            ++reopened;
          }
          fd = connect();
        }
      };
      refill(control, [&] { return ConnectIdleUnix(daemon_->control_socket()); });
      refill(http, [&] { return ConnectIdleTcp(daemon_->metrics_address()); });
      std::this_thread::sleep_for(milliseconds(100));
    }
    for (int fd : control) close(fd);
    for (int fd : http) close(fd);
  });
  // Let the holder fill the slots, then probe as kubelet and dnsctl would.
  for (int i = 0; i < 300 && reopened < 300; ++i) std::this_thread::sleep_for(milliseconds(10));
  int max_fds = 0;
  for (int i = 0; i < 25; ++i) {
    auto t0 = Clock::now();
    std::string health = HttpGet(daemon_->metrics_address(), "/healthz", 2000);
    EXPECT_THAT(health, HasSubstr("200 OK")) << "probe " << i;
    EXPECT_LT(Clock::now() - t0, milliseconds(1000)) << "probe " << i;
    t0 = Clock::now();
    EXPECT_TRUE(Answers(1000)) << "query " << i;
    EXPECT_LT(Clock::now() - t0, milliseconds(500)) << "query " << i;
    if (i % 5 == 0) {
      std::string out;
      EXPECT_EQ(daemon_->Dnsctl({"health"}, &out), 0) << out;
    }
    max_fds = std::max(max_fds, OpenDescriptors(daemon_->pid()));
    std::this_thread::sleep_for(milliseconds(100));
  }
  done = true;
  holder.join();
  // Bounded by the slots (64 control, 256 HTTP), not by what clients open.
  EXPECT_LT(max_fds, baseline_fds + 64 + 256 + 16);
  json s = Control(R"({"command":"stats"})");
  EXPECT_GT(s["connections"]["control"]["idle_cut"].get<int>() + s["connections"]["control"]["timed_out"].get<int>(),
            0);
  EXPECT_GT(s["connections"]["http"]["timed_out"].get<int>(), 0);
  EXPECT_EQ(s["connections"]["http"]["refused"], 0);
}

TEST_F(HostileInputTest, AStrayReleaseIsRefusedAndChangesNothing) {
  TempDir dir;
  std::string snap = dir.path() + "/cache.snap";
  StartDaemon({"--snapshot", snap});
  ASSERT_TRUE(Answers());
  // Well-formed, with the daemon's own addresses, from a process that is
  // not a nodedns serving them (this test).
  json a = Control(R"({"command":"release","pid":)" + std::to_string(getpid()) +
                   R"(,"protocol":1,"addresses":[")" + daemon_->addresses()[0] + R"("]})");
  EXPECT_EQ(a["ok"], false);
  EXPECT_THAT(a.value("error", ""), HasSubstr("not nodedns"));
  EXPECT_THAT(daemon_->log(), HasSubstr("release refused"));
  // The control socket stays, and SIGTERM still writes the final snapshot.
  std::string out;
  EXPECT_EQ(daemon_->Dnsctl({"health"}, &out), 0) << out;
  EXPECT_EQ(daemon_->Stop(), 0);
  EXPECT_EQ(access(snap.c_str(), F_OK), 0);
  EXPECT_THAT(daemon_->log(), Not(HasSubstr("left to the successor")));
  daemon_.reset();
}

TEST_F(HostileInputTest, ATakeoverByANodednsServingOtherAddressesIsRefused) {
  StartDaemon();
  // A nodedns binary of our user asks for the socket, but serves another
  // port: it is refused, stops, and the first keeps its socket.
  auto other = DaemonProcess::Start(
      {"--upstream", upstream_->address(), "--control-socket", daemon_->control_socket(), "--takeover"});
  EXPECT_EQ(other->Stop(0), 1) << other->log();
  EXPECT_THAT(other->log(), HasSubstr("refused to hand over"));
  EXPECT_THAT(other->log(), HasSubstr("does not serve this nodedns's addresses"));
  EXPECT_THAT(daemon_->log(), HasSubstr("release refused"));
  std::string out;
  EXPECT_EQ(daemon_->Dnsctl({"health"}, &out), 0) << out;
  EXPECT_TRUE(Answers());
}

// Waits (bounded) until `daemon`'s log says `text`.
bool WaitForLog(DaemonProcess& daemon, const std::string& text) {
  for (int i = 0; i < 500 && daemon.log().find(text) == std::string::npos; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  return daemon.log().find(text) != std::string::npos;
}

TEST_F(HostileInputTest, ASuccessorThatDiesLeavesTheControlSocketToThePredecessor) {
  TempDir dir;
  std::string snap = dir.path() + "/cache.snap";
  StartDaemon({"--snapshot", snap});
  auto successor = DaemonProcess::Start({"--upstream", upstream_->address(), "--snapshot", snap, "--control-socket",
                                         daemon_->control_socket(), "--takeover", "--listen", daemon_->addresses()[0]},
                                        /*listen_in_args=*/true);
  ASSERT_EQ(successor->port(), daemon_->port()) << successor->log();
  ASSERT_TRUE(WaitForLog(*daemon_, "the successor owns the control socket now")) << daemon_->log();
  // It crashes before the old one is told to stop: the old one must not be
  // left serving without a control socket (and would skip its snapshot).
  kill(successor->pid(), SIGKILL);
  successor->Stop(0);
  ASSERT_TRUE(WaitForLog(*daemon_, "the successor has gone")) << daemon_->log();
  std::string out;
  EXPECT_EQ(daemon_->Dnsctl({"health"}, &out), 0) << out;
  EXPECT_TRUE(Answers());
  // Its final snapshot is written again at exit (a new file renamed over).
  struct stat before {};
  ASSERT_EQ(stat(snap.c_str(), &before), 0);
  EXPECT_EQ(daemon_->Stop(), 0);
  EXPECT_THAT(daemon_->log(), Not(HasSubstr("left to the successor")));
  struct stat after {};
  ASSERT_EQ(stat(snap.c_str(), &after), 0);
  EXPECT_NE(after.st_ino, before.st_ino);
  daemon_.reset();
}

TEST_F(HostileInputTest, ASecondNodednsOnTheSameAddressIsRefused) {
  StartDaemon();
  TempDir dir;
  std::string who = "(pid " + std::to_string(daemon_->pid()) + ")";
  // Same DNS address, another control socket: without the check both would
  // serve it and the kernel would split the queries.
  auto twin = DaemonProcess::Start({"--upstream", upstream_->address(), "--listen", daemon_->addresses()[0],
                                    "--control-socket", dir.path() + "/twin.sock"},
                                   /*listen_in_args=*/true);
  EXPECT_EQ(twin->Stop(0), 1);
  EXPECT_THAT(twin->log(), HasSubstr("udp " + daemon_->addresses()[0] + " is already served by nodedns " + who));
  // Same metrics address.
  auto scraper_twin = DaemonProcess::Start({"--upstream", upstream_->address(), "--metrics-listen",
                                            daemon_->metrics_address(), "--control-socket", dir.path() + "/t2.sock"});
  EXPECT_EQ(scraper_twin->Stop(0), 1);
  EXPECT_THAT(scraper_twin->log(),
              HasSubstr("HTTP endpoint tcp " + daemon_->metrics_address() + " is already served by nodedns " + who));
  // The first one serves on, alone.
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(Answers());
  EXPECT_EQ(Control(R"({"command":"stats"})")["counters"]["queries"], 20);
}

}  // namespace
}  // namespace nodedns::testing
