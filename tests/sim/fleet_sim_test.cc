// The fleet on fake clocks (fleet.h): N nodedns nodes with the default
// configuration in front of one cluster DNS of finite capacity, through the
// control-plane outage. NODEDNS_FLEET_NODES scales the hand-written runs;
// NODEDNS_FLEET_SEEDS and NODEDNS_FLEET_FIRST_SEED the random ones;
// NODEDNS_FLEET_VERBOSE=1 prints each run's summary.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <iostream>
#include <random>

#include "gtest/gtest.h"
#include "tests/sim/fleet.h"

namespace nodedns::sim {
namespace {

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : fallback;
}

FleetResult RunAndReport(const FleetSchedule& s) {
  FleetResult r = RunFleet(s);
  if (std::getenv("NODEDNS_FLEET_VERBOSE")) std::cout << s.ToString() << "\n" << r.Summary() << "\n";
  return r;
}

// Every lookup of a name the node had answered before is answered (from
// the cache, stale if need be) in every phase.
void ExpectKnownNamesAnswered(const FleetSchedule& s, const FleetResult& r) {
  static const char* kPhases[] = {"steady", "down", "recovery", "full"};
  for (int p = 0; p < 4; ++p) {
    EXPECT_EQ(r.known_answered[p], r.known_asked[p]) << kPhases[p] << "\n" << s.ToString() << "\n" << r.Summary();
  }
}

// bench/fleet/'s shape and timeline: the cluster DNS recovers at a third of
// its capacity. The fleet stays well under it, nothing is dropped, and 99 %
// of the nodes give fresh answers within 2 s (the targets).
TEST(FleetSimulation, RecoveryAtAThirdOfTheCapacity) {
  FleetSchedule s;
  s.nodes = EnvInt("NODEDNS_FLEET_NODES", 150);
  s.recovery_factor = 1.0 / 3;
  FleetResult r = RunAndReport(s);
  ASSERT_TRUE(r.violation.empty()) << r.violation;
  ExpectKnownNamesAnswered(s, r);
  EXPECT_LE(r.RecoveryPeak(0), 1.0) << r.Summary();
  EXPECT_EQ(r.RecoveryDropShare(), 0.0) << r.Summary();
  EXPECT_LE(r.FreshOn(0.99), 2.0) << r.Summary();
}

// A twentieth of the capacity: about 4.7 answers a second per node, about
// what the nodes' refreshes alone ask, and less than 4 queries in flight per
// node fit in the server's queue. Drops must take the limits below one query
// in flight: answers that only a retry got count as losses, so the fleet's
// mean load stays under the capacity and few queries are dropped. (What
// stays above: the first seconds, until the first losses are seen a retry
// timeout later; the README's "Scaling on paper" has the numbers.)
TEST(FleetSimulation, RecoveryAtATwentiethOfTheCapacity) {
  FleetSchedule s;
  s.nodes = EnvInt("NODEDNS_FLEET_NODES", 150);
  s.recovery_factor = 0.05;
  FleetResult r = RunAndReport(s);
  ASSERT_TRUE(r.violation.empty()) << r.violation;
  ExpectKnownNamesAnswered(s, r);
  EXPECT_LE(r.RecoveryLoad(), 1.0) << r.Summary();
  EXPECT_LE(r.RecoveryDropShare(), 0.05) << r.Summary();
  EXPECT_LE(r.RecoveryPeak(5), 1.1) << r.Summary();  // after the first seconds
  EXPECT_LE(r.FreshOn(0.99), 4.0) << r.Summary();
}

// What the limits do per node does not depend on how many nodes there are:
// the load per unit of capacity and the share dropped are the same for a
// fleet four times larger (the fleet bench's hundred nodes tell about
// thousands).
TEST(FleetSimulation, TheFleetsSizeDoesNotChangeTheLoadPerUnitOfCapacity) {
  FleetSchedule small;
  small.nodes = 60;
  small.recovery_factor = 0.05;
  FleetSchedule large = small;
  large.nodes = 4 * small.nodes;
  FleetResult a = RunAndReport(small);
  FleetResult b = RunAndReport(large);
  EXPECT_NEAR(a.RecoveryLoad(), b.RecoveryLoad(), 0.05) << a.Summary() << "\n" << b.Summary();
  EXPECT_NEAR(a.RecoveryDropShare(), b.RecoveryDropShare(), 0.02) << a.Summary() << "\n" << b.Summary();
  EXPECT_NEAR(a.FreshOn(0.99), b.FreshOn(0.99), 0.5) << a.Summary() << "\n" << b.Summary();
}

// Random fleets, timelines and recovering capacities. Invariants: names a
// node knew are answered in every phase; when the recovering server has room
// for every node's refreshes twice over, and for refreshing all of a node's
// names (expired at once during the outage) within a second, the fleet keeps
// it under its capacity on average, and no lookup made 2 s or more after the
// return gets a stale answer (the policy simulation's invariant 3, for a
// fleet). With less room, refreshes wait for the server, and stale answers
// meanwhile are what RFC 8767 asks for.
TEST(FleetSimulation, RandomFleetsKeepTheirInvariants) {
  int seeds = EnvInt("NODEDNS_FLEET_SEEDS", 4);
  int first = EnvInt("NODEDNS_FLEET_FIRST_SEED", 1);
  int checked = 0;  // runs with room enough for the load and freshness invariants
  for (int seed = first; seed < first + seeds; ++seed) {
    std::mt19937_64 rng(seed);
    auto pick = [&rng](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
    FleetSchedule s;
    s.seed = seed;
    s.nodes = static_cast<int>(pick(20, 150));
    s.names = static_cast<int>(pick(20, 200));
    s.qps_per_node = pick(2, 20);
    static constexpr uint32_t kTtls[] = {5, 15, 30};
    s.ttl = kTtls[rng() % 3];
    s.recovery_factor = pick(0.04, 1.0);
    // What refreshing every name once per TTL asks of the server, per node;
    // and at the return every node's names have expired at once, so the
    // server must also be able to refresh all of them within a second.
    double refreshes = std::min<double>(s.names, s.qps_per_node * s.ttl) / s.ttl;
    double room = std::max<double>(2 * refreshes + 2, s.names);
    // Half the fleets recover with room for that (their healthy capacity
    // chosen so), half with whatever the draw gives (mostly less).
    if (rng() % 2 == 0) s.capacity_per_node = pick(1.05, 2.0) * room / s.recovery_factor;
    s.steady = absl::Seconds(pick(5, 20));
    s.down = absl::Seconds(s.ttl + pick(1, 20));
    s.recovery = absl::Seconds(pick(10, 25));
    s.full = absl::Seconds(pick(3, 10));
    FleetResult r = RunAndReport(s);
    ASSERT_TRUE(r.violation.empty()) << r.violation << "\n" << s.ToString();
    ExpectKnownNamesAnswered(s, r);
    double per_node = r.recovery_capacity / s.nodes;
    if (per_node >= room) {
      ++checked;
      EXPECT_LE(r.RecoveryLoad(), 1.0) << s.ToString() << "\n" << r.Summary();
      EXPECT_EQ(r.late_stale, 0u) << s.ToString() << "\n" << r.Summary();
    }
    if (HasFailure()) return;
  }
  std::cout << checked << " of " << seeds << " fleets had room for every node's refreshes (load and freshness checked)\n";
}

// Not a test: the README's table. Run with --gtest_also_run_disabled_tests
// --gtest_filter=*Table*; NODEDNS_FLEET_TABLE lists nodes:factor pairs.
TEST(FleetSimulation, DISABLED_Table) {
  const char* spec = std::getenv("NODEDNS_FLEET_TABLE");
  std::string list = spec ? spec : "100:0.333,1000:0.333,5000:0.333,100:0.05,1000:0.05,5000:0.05,1000:0.03";
  std::cout << "nodes  recovery  load  peak  peak-after-5s  dropped%  fresh99%(s)  late-stale\n";
  size_t pos = 0;
  while (pos < list.size()) {
    size_t comma = list.find(',', pos);
    std::string item = list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? list.size() : comma + 1;
    FleetSchedule s;
    s.nodes = std::atoi(item.c_str());
    s.recovery_factor = std::atof(item.c_str() + item.find(':') + 1);
    FleetResult r = RunAndReport(s);
    ASSERT_TRUE(r.violation.empty()) << r.violation;
    std::printf("%5d  %8.3f  %4.2f  %4.2f  %13.2f  %8.1f  %11.2f  %llu/%llu\n", s.nodes, s.recovery_factor,
                r.RecoveryLoad(), r.RecoveryPeak(0), r.RecoveryPeak(5), 100 * r.RecoveryDropShare(), r.FreshOn(0.99),
                static_cast<unsigned long long>(r.late_stale), static_cast<unsigned long long>(r.late_answers));
  }
}

}  // namespace
}  // namespace nodedns::sim
