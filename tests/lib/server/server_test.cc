#include "lib/server/server.h"

#include <dirent.h>
#include <sys/resource.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/config/config.h"
#include "lib/dns/constants.h"
#include "tests/support/dns_client.h"
#include "tests/support/fake_upstream.h"

namespace nodedns::server {
namespace {

using ::testing::HasSubstr;

// The default configuration on a free loopback port with `workers` UDP
// workers (and the default one TCP worker), forwarding to `upstream`.
config::Config TestConfig(int workers, const std::string& upstream) {
  config::Config c = config::DefaultConfig();
  c.listen = {*SocketAddress::Parse("127.0.0.1:0")};
  c.workers = workers;
  c.zones[0].servers = {*SocketAddress::Parse(upstream)};
  c.zones[0].use_resolv_conf = false;
  return c;
}

// What /healthz and the systemd watchdog rely on: a worker whose loop is
// stuck stops beating, and is named.
TEST(ServerTest, AStuckWorkerLoopIsReportedAndRecovers) {
  auto server = Server::Create(TestConfig(2, "127.0.0.1:1"), SystemSteadyClock::Get());
  ASSERT_TRUE(server.ok()) << server.status();
  (*server)->Start();
  std::string why;
  EXPECT_TRUE((*server)->LoopsResponsive(absl::Seconds(1), &why)) << why;

  (*server)->Post(1, [] { std::this_thread::sleep_for(std::chrono::milliseconds(1200)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  why.clear();
  EXPECT_FALSE((*server)->LoopsResponsive(absl::Milliseconds(500), &why));
  EXPECT_THAT(why, HasSubstr("worker 1 silent for"));
  EXPECT_THAT(why, ::testing::Not(HasSubstr("worker 0")));

  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  why.clear();
  EXPECT_TRUE((*server)->LoopsResponsive(absl::Milliseconds(500), &why)) << why;

  // Upstream summaries come back from every worker, merged per server. Nothing
  // listens on 127.0.0.1:1: the zone probes of a new pool find that out
  // without a single client query, and the breaker opens on every worker.
  absl::StatusOr<std::vector<UpstreamSummary>> ups;
  for (int i = 0; i < 200; ++i) {
    ups = (*server)->Upstreams(absl::Seconds(1));
    ASSERT_TRUE(ups.ok()) << ups.status();
    if (!ups->empty() && (*ups)[0].workers_open == (*server)->workers()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(ups->size(), 1u);
  EXPECT_EQ((*ups)[0].server, "127.0.0.1:1");
  EXPECT_TRUE((*ups)[0].open);
  EXPECT_EQ((*ups)[0].workers_open, 3);  // 2 UDP workers and the TCP worker
  (*server)->Stop();
}

// The nice value of each of this process's threads, by name.
std::map<std::string, int> ThreadNices() {
  std::map<std::string, int> out;
  DIR* d = opendir("/proc/self/task");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string dir = std::string("/proc/self/task/") + e->d_name;
    std::string comm, stat;
    std::getline(std::ifstream(dir + "/comm"), comm);
    std::getline(std::ifstream(dir + "/stat"), stat);
    // Fields after the ")" that ends the name: state is field 3, nice 19.
    std::istringstream rest(stat.substr(stat.rfind(')') + 2));
    std::string field;
    for (int i = 3; i <= 19 && rest >> field; ++i) {
    }
    out[comm] = std::atoi(field.c_str());
  }
  closedir(d);
  return out;
}

// The loops are named for top -H and perf, and a TCP loop yields the CPU to
// the UDP ones (nice +5 on its thread only).
TEST(ServerTest, TheLoopThreadsAreNamedAndTcpYieldsTheCpu) {
  auto server = Server::Create(TestConfig(2, "127.0.0.1:1"), SystemSteadyClock::Get());
  ASSERT_TRUE(server.ok()) << server.status();
  (*server)->Start();
  std::map<std::string, int> nices;
  for (int i = 0; i < 100 && nices.count("nodedns-tcp2") == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    nices = ThreadNices();
  }
  int base = getpriority(PRIO_PROCESS, 0);
  ASSERT_EQ(nices.count("nodedns-udp0"), 1u);
  ASSERT_EQ(nices.count("nodedns-udp1"), 1u);
  ASSERT_EQ(nices.count("nodedns-tcp2"), 1u);
  EXPECT_EQ(nices["nodedns-udp0"], base);
  EXPECT_EQ(nices["nodedns-tcp2"], std::min(19, base + 5));
  (*server)->Stop();
}

// UDP and TCP run on loops of their own (server.tcp_workers): whatever keeps
// one busy (here a task that blocks it for 1.5 s; in life slowloris octets,
// a reconnect storm) does not hold up an answer on the other.
TEST(ServerTest, UdpAndTcpAreServedByLoopsOfTheirOwn) {
  auto upstream = testing::FakeUpstream::Start();
  ASSERT_NE(upstream, nullptr);
  config::Config c = TestConfig(1, upstream->address());
  ASSERT_EQ(config::DefaultConfig().workers, 1);
  ASSERT_EQ(c.tcp_workers, 1);
  auto server = Server::Create(c, SystemSteadyClock::Get());
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_EQ((*server)->workers(), 2);
  (*server)->Start();
  uint16_t port = (*server)->bound_addresses()[0].port();
  auto answered_within = [&](bool tcp, const std::string& name, int timeout_ms) {
    auto q = testing::MakeQuery(name, dns::kTypeA);
    auto a = tcp ? testing::TcpExchange("127.0.0.1", port, q, timeout_ms)
                 : testing::UdpExchange("127.0.0.1", port, q, timeout_ms);
    return a.has_value() && a->size() >= dns::kHeaderSize && ((*a)[3] & 0x0f) == dns::kNoError;
  };
  ASSERT_TRUE(answered_within(false, "warm.example", 2000));
  ASSERT_TRUE(answered_within(true, "warm.example", 2000));

  for (size_t stuck : {0, 1}) {  // the UDP worker, then the TCP worker
    std::atomic<bool> released{false};
    (*server)->Post(stuck, [&released] {
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      released = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the task runs
    std::string name = "new" + std::to_string(stuck) + ".example";  // a miss: the upstream is asked
    bool other_is_tcp = stuck == 0;
    EXPECT_TRUE(answered_within(other_is_tcp, name, 1000))
        << (other_is_tcp ? "TCP" : "UDP") << " waited for the other protocol's stuck loop";
    EXPECT_FALSE(released) << "answered only after the stuck loop was released";
    // The stuck loop answers once released: it was only busy.
    EXPECT_TRUE(answered_within(!other_is_tcp, name + "2", 3000));
    EXPECT_TRUE(released);
  }
  (*server)->Stop();
}

}  // namespace
}  // namespace nodedns::server
