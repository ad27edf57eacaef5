#include "lib/resolver/loop_probes.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "lib/dns/name.h"

namespace nodedns::resolver {
namespace {

std::string Wire(const std::string& text) { return *dns::NameFromText(text); }

TEST(LoopProbesTest, SeesOnlyArmedNamesInAnyCaseAndCountsThem) {
  LoopProbes p;
  EXPECT_FALSE(p.Seen(Wire("_nodedns-loop-1.cluster.local")));  // nothing armed
  p.Arm({Wire("_nodedns-loop-1.cluster.local"), Wire("_nodedns-loop-2.")});
  // Forwarders may randomise the letter case (DNS 0x20).
  EXPECT_TRUE(p.Seen(Wire("_NodeDNS-Loop-1.CLUSTER.local")));
  EXPECT_TRUE(p.Seen(Wire("_nodedns-loop-1.cluster.local")));
  EXPECT_FALSE(p.Seen(Wire("www.cluster.local")));
  EXPECT_FALSE(p.Seen(Wire("x._nodedns-loop-2.")));
  EXPECT_EQ(p.hits(Wire("_nodedns-loop-1.cluster.local")), 2);
  EXPECT_EQ(p.hits(Wire("_nodedns-loop-2.")), 0);
  p.Disarm();
  EXPECT_FALSE(p.Seen(Wire("_nodedns-loop-2.")));
  EXPECT_EQ(p.hits(Wire("_nodedns-loop-2.")), 0);
  EXPECT_EQ(p.hits(Wire("_nodedns-loop-1.cluster.local")), 2);  // kept for the check after the wait
  // A new probe starts from zero.
  p.Arm({Wire("_nodedns-loop-1.cluster.local")});
  EXPECT_EQ(p.hits(Wire("_nodedns-loop-1.cluster.local")), 0);
}

TEST(LoopProbesTest, HitsFromManyWorkersAreCountedWhileTheControlThreadReads) {
  LoopProbes p;
  std::string name = Wire("_nodedns-loop-3.example");
  std::string other = Wire("_nodedns-loop-4.example");
  p.Arm({name});
  std::atomic<int> seen{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) seen += p.Seen(name) ? 1 : 0;
    });
  }
  for (int i = 0; i < 200; ++i) EXPECT_LE(p.hits(name), 8000);
  for (auto& t : workers) t.join();
  EXPECT_EQ(seen.load(), 8000);
  EXPECT_EQ(p.hits(name), 8000) << "no hit lost (the TSan build runs this test too)";
  // Re-arming while workers look is safe too.
  std::thread looker([&] {
    for (int i = 0; i < 2000; ++i) (void)p.Seen(other);
  });
  for (int i = 0; i < 100; ++i) {
    p.Arm({other});
    p.Disarm();
  }
  looker.join();
  p.Arm({other});
  EXPECT_EQ(p.hits(other), 0);
}

}  // namespace
}  // namespace nodedns::resolver
