// Fair under floods (issue 11), end to end: the real nodedns with its DEFAULT
// configuration; one client (127.0.0.2) floods unique names far beyond what
// the sanitizer build can serve (about 3,000 misses a second on two cores)
// while another (127.0.0.1) asks new names and names it cached before. The
// victim's new names must still be answered. bench/flood.sh is the full-size
// scenario (30,000 qps for 25 s) on the Release build, beside Unbound.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "gtest/gtest.h"
#include "lib/dns/constants.h"
#include "tests/support/daemon_process.h"
#include "tests/support/dns_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/load_client.h"

namespace nodedns::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::vector<std::string> Names(const std::string& prefix, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i) + ".example");
  return out;
}

int NoError(const LoadClient& c) {
  int n = 0;
  for (const auto& r : c.results()) n += r.answered && r.rcode == dns::kNoError;
  return n;
}

// Sends `qps` unique names from 127.0.0.2 for `duration`, in batches every
// millisecond; reads (and ignores) whatever comes back. Bounded by duration.
void Flood(uint16_t port, int qps, milliseconds duration, std::atomic<int>* sent) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.2", &from.sin_addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof(from)), 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  auto start = Clock::now();
  uint8_t buf[1500];
  int n = 0;
  while (Clock::now() < start + duration) {
    int due = static_cast<int>(std::chrono::duration<double>(Clock::now() - start).count() * qps);
    for (; n < due; ++n) {
      QueryOptions o;
      o.id = static_cast<uint16_t>(n);
      auto q = MakeQuery("f" + std::to_string(n) + ".flood.example", dns::kTypeA, o);
      send(fd, q.data(), q.size(), MSG_DONTWAIT);
    }
    while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
    }
    std::this_thread::sleep_for(milliseconds(1));
  }
  *sent = n;
  close(fd);
}

TEST(FloodTest, AnotherClientsNewNamesAreAnsweredDuringAFlood) {
  auto upstream = FakeUpstream::Start();
  ASSERT_NE(upstream, nullptr);
  DaemonProcess::Options o;
  o.args = {"--upstream", upstream->address()};
  auto daemon = DaemonProcess::Start(o);
  ASSERT_NE(daemon->port(), 0) << daemon->log();
  auto cached = Names("known", 200);
  {
    LoadClient warm(daemon->port(), cached, 1000, milliseconds(200));
    warm.Join();
    ASSERT_EQ(NoError(warm), 200);
  }
  std::atomic<int> flood_sent{0};
  std::thread flood([&] { Flood(daemon->port(), 20000, milliseconds(5000), &flood_sent); });
  std::this_thread::sleep_for(milliseconds(1000));  // the flood has filled what it can
  // 300 new names and the 200 cached ones, at 100 qps each, during the flood.
  LoadClient victim_new(daemon->port(), Names("victim", 300), 100, milliseconds(3000));
  LoadClient victim_cached(daemon->port(), cached, 100, milliseconds(2000));
  victim_new.Join();
  victim_cached.Join();
  flood.join();
  std::string stats;
  daemon->Dnsctl({"--json", "stats"}, &stats);
  auto s = nlohmann::json::parse(stats, nullptr, false);
  ASSERT_FALSE(s.is_discarded()) << stats;
  const auto& c = s["counters"];
  std::string summary = "flood sent " + std::to_string(flood_sent.load()) + "; shed_dropped " +
                        c["shed_dropped"].dump() + ", fair_share_pushed_out " + c["fair_share_pushed_out"].dump() +
                        ", upstream_refused_cap " + c["upstream_refused_cap"].dump() + ", servfail_local " +
                        c["servfail_local"].dump();
  // The flood was more than the daemon could serve ...
  EXPECT_GT(flood_sent.load(), 60000) << summary;
  // ... and the other client's new names were still answered (the issue's
  // target is 99 % on the Release build; this machine is shared and the
  // daemon runs under ASan), its cached ones all but never lost.
  int unanswered = 0;
  for (const auto& r : victim_new.results()) unanswered += !r.answered;
  EXPECT_GE(NoError(victim_new), 291) << "of 300 (" << unanswered << " unanswered); " << summary;
  EXPECT_GE(NoError(victim_cached), 198) << "of 200; " << summary;
  EXPECT_EQ(daemon->Stop(), 0) << daemon->log();
}

}  // namespace
}  // namespace nodedns::testing
