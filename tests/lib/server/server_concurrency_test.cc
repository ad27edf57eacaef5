// Everything that crosses threads in the data plane, at once (README,
// "Threading"): several workers serving UDP and TCP clients from the shared
// cache while the control thread reloads, gathers upstream summaries and
// counters, other threads Post tasks, and the server stops with queries in
// flight; then a handover to a successor in the same process. Under
// ThreadSanitizer (NODEDNS_TSAN, scripts/test.sh) this is where a data race
// between a worker and the control thread shows; in every build it checks
// that nothing is lost meanwhile.

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "gtest/gtest.h"
#include "lib/config/config.h"
#include "lib/dns/constants.h"
#include "lib/server/server.h"
#include "tests/support/dns_client.h"
#include "tests/support/fake_upstream.h"

namespace nodedns::server {
namespace {

// spdlog's registry is a function-local static inside the (uninstrumented)
// libspdlog: built lazily by the first log line, from whichever worker logs
// first, ThreadSanitizer cannot see its guard and reports the other workers'
// reads. The daemon logs from main() before any worker starts; so does this
// test binary, before main().
[[maybe_unused]] const bool kLoggerReady = (spdlog::default_logger(), true);

using nodedns::testing::FakeUpstream;
using nodedns::testing::MakeQuery;
using nodedns::testing::TcpPipeline;
using nodedns::testing::UdpExchange;

config::Config TestConfig(const FakeUpstream& upstream, int workers) {
  config::Config c = config::DefaultConfig();
  c.listen = {*SocketAddress::Parse("127.0.0.1:0")};
  c.workers = workers;
  c.zones[0].servers = {*SocketAddress::Parse(upstream.address())};
  c.zones[0].use_resolv_conf = false;
  return c;
}

// The rcode of an answer to `id`, or -1 without one.
int Rcode(const std::optional<std::vector<uint8_t>>& a, uint16_t id) {
  if (!a || a->size() < dns::kHeaderSize || dns::Read16(a->data()) != id) return -1;
  return (*a)[3] & 0x0f;
}

// Asks `names` names (a third of them again and again: hits) from its own
// sockets; counts the good answers (NOERROR, NXDOMAIN) and the others.
void UdpClient(uint16_t port, int client, int names, std::atomic<int>* good, std::atomic<int>* bad) {
  for (int i = 0; i < names; ++i) {
    int n = i % 3 == 0 ? i % 12 : i;
    std::string name = (n % 5 == 0 ? "nx-" : "c") + std::to_string(client) + "-" + std::to_string(n) + ".example";
    uint16_t id = static_cast<uint16_t>(client * 1000 + i);
    int rcode = Rcode(UdpExchange("127.0.0.1", port, MakeQuery(name, dns::kTypeA, {.id = id}), 5000), id);
    (rcode == dns::kNoError || rcode == dns::kNxDomain ? good : bad)->fetch_add(1);
  }
}

TEST(ServerConcurrencyTest, WorkersServeWhileTheControlThreadReloadsCollectsAndPosts) {
  auto up_a = FakeUpstream::Start();
  auto up_b = FakeUpstream::Start();
  ASSERT_TRUE(up_a && up_b);
  config::Config ca = TestConfig(*up_a, 3);
  config::Config cb = TestConfig(*up_b, 3);
  cb.zones[0].max_stale = absl::Minutes(5);
  cb.resolver.stale_reply_ttl = 10;
  cb.resolver.prefetch = false;
  auto server = Server::Create(ca, SystemSteadyClock::Get());
  ASSERT_TRUE(server.ok()) << server.status();
  Server& s = **server;
  s.Start();
  const uint16_t port = s.bound_addresses()[0].port();

  constexpr int kClients = 2, kNames = 120;
  std::atomic<int> good{0}, bad{0}, tcp_answers{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) clients.emplace_back(UdpClient, port, i, kNames, &good, &bad);
  clients.emplace_back([&] {
    for (int round = 0; round < 6; ++round) {
      std::vector<std::vector<uint8_t>> qs;
      for (int q = 0; q < 8; ++q) {
        qs.push_back(MakeQuery("t" + std::to_string(q % 4) + ".example", dns::kTypeA,
                               {.id = static_cast<uint16_t>(round * 8 + q)}));
      }
      tcp_answers += static_cast<int>(TcpPipeline("127.0.0.1", port, qs, 10000).size());
    }
  });
  // Tasks posted from two threads to every worker: each runs exactly once.
  constexpr int kPosts = 300;
  std::atomic<int> ran{0};
  for (int p = 0; p < 2; ++p) {
    clients.emplace_back([&, p] {
      for (int i = 0; i < kPosts; ++i) s.Post(static_cast<size_t>(i + p) % 3, [&ran] { ran.fetch_add(1); });
    });
  }

  // The control thread, meanwhile: reloads (new upstream, new knobs; the old
  // generation drains), summaries (posted to every worker and awaited),
  // counters (relaxed atomics), the configuration, the heartbeats. At least
  // two reloads, however fast the clients are (a fast machine finished them
  // within the first).
  int reloads = 0;
  auto all_done = [&] { return good + bad >= kClients * kNames && tcp_answers >= 48; };
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
       (!all_done() || reloads < 2) && std::chrono::steady_clock::now() < deadline;) {
    absl::Status reloaded = s.Reload(reloads % 2 ? ca : cb);
    ASSERT_TRUE(reloaded.ok()) << reloaded;
    ++reloads;
    auto ups = s.Upstreams(absl::Seconds(10));
    ASSERT_TRUE(ups.ok()) << ups.status();
    EXPECT_FALSE(ups->empty());
    MetricSet m;
    s.AppendMetrics(&m);
    (void)s.options();
    std::string why;
    (void)s.LoopsResponsive(absl::Seconds(30), &why);
    (void)s.cache().entries();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (auto& t : clients) t.join();
  EXPECT_GE(reloads, 2);
  EXPECT_EQ(good.load(), kClients * kNames) << bad.load() << " queries got no good answer";
  EXPECT_EQ(tcp_answers.load(), 48);
  for (int i = 0; i < 1000 && ran < 2 * kPosts; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(ran.load(), 2 * kPosts);
  MetricSet v;
  s.AppendMetrics(&v);
  EXPECT_GE(v.GetCount("", "queries_udp"), static_cast<uint64_t>(kClients * kNames));
  EXPECT_GT(v.GetCount("", "cache_hits"), 0u);
  EXPECT_GT(up_a->queries() + up_b->queries(), 0);

  // Stop with queries in flight: the upstream answers late, every query
  // still gets its answer before the workers close.
  up_a->set_delay_ms(200);
  up_b->set_delay_ms(200);
  int fd = nodedns::testing::ConnectLoopback(SOCK_DGRAM, port);
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 10; ++i) {
    auto q = MakeQuery("late" + std::to_string(i) + ".example", dns::kTypeA, {.id = static_cast<uint16_t>(i)});
    ASSERT_EQ(send(fd, q.data(), q.size(), 0), static_cast<ssize_t>(q.size()));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  s.Post(0, [&ran] { ran.fetch_add(1); });
  s.Stop();
  s.Post(1, [] { ADD_FAILURE() << "a task posted after Stop ran"; });
  int answered = 0;
  uint8_t buf[512];
  while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) ++answered;
  close(fd);
  // Each went to the worker its 4-tuple hashes to, and none was dropped.
  EXPECT_EQ(answered, 10);
}

TEST(ServerConcurrencyTest, HandoverToASuccessorInTheSameProcessLosesNoQuery) {
  auto up = FakeUpstream::Start();
  ASSERT_TRUE(up);
  auto old_server = Server::Create(TestConfig(*up, 2), SystemSteadyClock::Get());
  ASSERT_TRUE(old_server.ok()) << old_server.status();
  (*old_server)->Start();
  const uint16_t port = (*old_server)->bound_addresses()[0].port();
  config::Config next = TestConfig(*up, 2);
  next.listen = (*old_server)->bound_addresses();

  std::atomic<bool> stop{false};
  std::atomic<int> good{0}, bad{0};
  std::thread client([&] {
    for (int i = 0; !stop; ++i) {
      uint16_t id = static_cast<uint16_t>(i);
      int rcode = Rcode(UdpExchange("127.0.0.1", port,
                                    MakeQuery("h" + std::to_string(i % 40) + ".example", dns::kTypeA, {.id = id}), 5000),
                        id);
      (rcode == dns::kNoError ? good : bad).fetch_add(1);
    }
  });
  auto wait_for = [&](int n) {
    for (int i = 0; i < 3000 && good < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  };
  wait_for(20);
  auto successor = Server::Create(next, SystemSteadyClock::Get());
  ASSERT_TRUE(successor.ok()) << successor.status();
  (*successor)->Start();
  ASSERT_TRUE((*old_server)->SteerToSuccessor().ok());
  wait_for(good + 20);
  (*old_server)->Stop();
  old_server->reset();
  ASSERT_TRUE((*successor)->DetachSteering().ok());
  wait_for(good + 20);
  stop = true;
  client.join();
  (*successor)->Stop();
  EXPECT_GE(good.load(), 60);
  EXPECT_EQ(bad.load(), 0);
  MetricSet after;
  (*successor)->AppendMetrics(&after);
  EXPECT_GT(after.GetCount("", "queries_udp"), 0u);
}

}  // namespace
}  // namespace nodedns::server
