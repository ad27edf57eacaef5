// Off-path cache poisoning (RFC 5452, the Kaminsky attack) against the real
// nodedns with its default configuration. The upstream is blackholed, so the
// forged answers have the whole attempt (3 s) to land. The attacker has
// learnt a source port the way Kaminsky's does: he made nodedns ask his own
// domain just before and saw the port. He then sends an answer for every one
// of the 65,536 IDs to that port, and, as a stronger attacker who somehow
// learnt the victim query's own port, to that one too, in lowercase (he cannot
// know the random letter case). Also measures the spread of source ports.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "gtest/gtest.h"
#include "lib/dns/constants.h"
#include "lib/dns/message.h"
#include "lib/dns/name.h"
#include "tests/support/daemon_process.h"
#include "tests/support/dns_client.h"
#include "tests/support/fake_upstream.h"

namespace nodedns::testing {
namespace {

using Mode = FakeUpstream::Mode;
using std::chrono::milliseconds;

// The forged answers for `name`, one per ID, with the attacker's address and
// a day's TTL.
std::vector<std::vector<uint8_t>> Forgeries(const std::string& name) {
  dns::Message m;
  m.flags = dns::kFlagQR | dns::kFlagRD | dns::kFlagRA;
  m.questions.push_back({*dns::NameFromText(name), dns::kTypeA, dns::kClassIN});
  m.answers.push_back({*dns::NameFromText(name), dns::kTypeA, dns::kClassIN, 86400, std::string("\x06\x06\x06\x06", 4)});
  m.edns = dns::Edns{};
  std::vector<uint8_t> wire = *dns::WriteMessage(m);
  std::vector<std::vector<uint8_t>> out(65536, wire);
  for (uint32_t id = 0; id < 65536; ++id) dns::Write16(out[id].data(), static_cast<uint16_t>(id));
  return out;
}

TEST(SpoofingTest, ForgedAnswersDoNotPoisonTheCache) {
  auto upstream = FakeUpstream::Start();
  ASSERT_NE(upstream, nullptr);
  auto daemon = DaemonProcess::Start({"--upstream", upstream->address()});
  ASSERT_NE(daemon->port(), 0) << daemon->log();

  // The spread of source ports over 2,000 queries.
  std::set<uint16_t> ports;
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(UdpExchange("127.0.0.1", daemon->port(), MakeQuery("spread" + std::to_string(i) + ".example", 1)));
  }
  for (const auto& q : upstream->log()) {
    if (q.type != dns::kTypeSOA) ports.insert(q.source_port);
  }
  std::cout << "distinct source ports over 2000 upstream queries: " << ports.size() << "\n";
  // Ports are drawn from the kernel's ephemeral range (28,232 ports by
  // default) and freed when the answer comes, so some repeat: 2,000 draws
  // give about 2000 - 2000^2 / (2 * 28232) = 1,929 distinct ports. A fixed
  // port gives 1.
  EXPECT_GE(ports.size(), 1850u);

  upstream->set_mode(Mode::kDrop);  // nothing real comes back: all the time in the world
  const int kTries = 3;
  int poisoned = 0;
  for (int t = 0; t < kTries; ++t) {
    std::string mine = "attacker" + std::to_string(t) + ".example";
    std::string victim = "victim-with-a-long-name" + std::to_string(t) + ".example";
    upstream->ResetCounts();
    // 1. The attacker makes nodedns ask his domain and sees the port.
    std::thread ask_mine([&] { UdpExchange("127.0.0.1", daemon->port(), MakeQuery(mine, 1), 200); });
    ask_mine.join();
    // 2. The victim's query goes out.
    std::vector<uint8_t> answer_to_client;
    std::thread ask_victim([&] {
      auto a = UdpExchange("127.0.0.1", daemon->port(), MakeQuery(victim, 1), 6000);
      if (a) answer_to_client = *a;
    });
    uint16_t seen_port = 0, victim_port = 0;
    for (int i = 0; i < 200 && victim_port == 0; ++i) {
      std::this_thread::sleep_for(milliseconds(10));
      for (const auto& q : upstream->log()) {
        if (q.name == mine + ".") seen_port = q.source_port;
        if (q.name == victim + ".") victim_port = q.source_port;
      }
    }
    if (seen_port == 0 || victim_port == 0) {
      ask_victim.join();
      for (const auto& q : upstream->log()) std::cout << "logged " << q.name << " port " << q.source_port << "\n";
      FAIL() << "the upstream did not see both queries" << daemon->log();
    }
    // 3. 65,536 forged answers to the port he saw, and 65,536 more to the
    // victim query's own port.
    auto forged = Forgeries(victim);
    // From the upstream's own address and port, which an off-path attacker
    // can always forge (the kernel's connected-socket filter lets them by).
    upstream->SendFrom(seen_port, forged);
    upstream->SendFrom(victim_port, forged);
    ask_victim.join();
    bool took = false;
    if (!answer_to_client.empty()) {
      dns::Message m = Parse(answer_to_client);
      for (const auto& rr : m.answers) took |= rr.rdata == std::string("\x06\x06\x06\x06", 4);
    }
    // And the cache: asked again once the upstream answers (until the zone is
    // seen healthy again, so the next try starts with a closed breaker),
    // never the forged record.
    upstream->set_mode(Mode::kAnswer);
    bool fresh = false;
    for (int i = 0; i < 40 && !fresh; ++i) {
      auto again = UdpExchange("127.0.0.1", daemon->port(), MakeQuery(victim, 1), 2000);
      if (!again) continue;
      dns::Message m = Parse(*again);
      for (const auto& rr : m.answers) took |= rr.rdata == std::string("\x06\x06\x06\x06", 4);
      fresh = m.rcode() == dns::kNoError && !m.answers.empty();
      if (!fresh) std::this_thread::sleep_for(milliseconds(250));
    }
    EXPECT_TRUE(fresh) << "no answer for " << victim << " after the upstream came back";
    upstream->set_mode(Mode::kDrop);
    poisoned += took;
  }
  std::string out;
  daemon->Dnsctl({"--json", "stats"}, &out);
  auto stats = nlohmann::json::parse(out, nullptr, false);
  std::cout << "forged-answer attempts: " << kTries << " x 131072 packets; poisoned: " << poisoned
            << "; forged packets seen and ignored on query sockets: " << stats["counters"]["upstream_ignored"] << "\n";
  EXPECT_EQ(poisoned, 0);
  EXPECT_GT(stats["counters"]["upstream_ignored"].get<int>(), 0);  // the ones that reached a live socket
  EXPECT_EQ(daemon->Stop(), 0) << daemon->log();
}

}  // namespace
}  // namespace nodedns::testing
