#ifndef NODEDNS_TESTS_SIM_FLEET_H_
#define NODEDNS_TESTS_SIM_FLEET_H_

// A fleet on fake clocks: N nodedns nodes (each its own cache, resolver and
// upstream pool, default configuration) in front of ONE simulated cluster
// DNS of finite capacity, through the 2024-12-11 timeline: steady, the
// control plane down (blackhole), recovery at a fraction of the capacity,
// full capacity. What bench/fleet/ measures with real processes on one
// machine (a hundred nodes at most), this checks deterministically for
// thousands: whether the fleet refills a recovering server's queue past
// what it answers (a second collapse), and how soon nodes serve fresh
// answers again.
//
// The server: a FIFO answering `capacity` queries a second (one every
// 1 / capacity seconds); a query that would wait more than `queue` is
// dropped, as an overloaded CoreDNS does. Service records carry a
// generation (1 before the recovery, 2 from it), so a fresh answer is told
// from a stale one. Each node's transport makes UdpChannel's attempts (1 s,
// then 2 s; each attempt its own ID, so the answer says which it answers),
// and every attempt costs the server a place in its queue.
//
// The clients: each node's pods ask Zipf-popular names of one catalogue,
// Poisson, and wait for nodedns's answer (it always answers: from the
// cache, stale, or SERVFAIL).

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace nodedns::sim {

struct FleetSchedule {
  uint64_t seed = 1;
  int nodes = 200;
  int names = 150;              // the catalogue every node's pods ask from
  double qps_per_node = 10;     // pod queries a node answers a second
  uint32_t ttl = 15;            // every record's, positive and negative
  // Healthy, queries a second per node: as bench/fleet/'s stand-in, twice
  // what the pods would ask it without a node cache (47 a second per node
  // there, with the search path).
  double capacity_per_node = 94;
  double recovery_factor = 0.05;  // the capacity while recovering, as a share of `capacity`
  absl::Duration queue = absl::Milliseconds(250);
  absl::Duration steady = absl::Seconds(20);
  absl::Duration down = absl::Seconds(25);
  absl::Duration recovery = absl::Seconds(25);
  absl::Duration full = absl::Seconds(10);
  std::string ToString() const;
};

struct FleetResult {
  std::string violation;  // empty when every answer was well-formed
  double recovery_capacity = 0;  // queries a second
  // Known names: the node had answered that name correctly before. Their
  // lookups per phase (steady, down, recovery, full) and how many got the
  // right address (either generation).
  uint64_t known_asked[4] = {};
  uint64_t known_answered[4] = {};
  uint64_t client_queries = 0;
  // The server, per second of the run: queries that reached it, and of
  // those dropped (over its queue; the blackhole's not counted).
  std::vector<uint64_t> received, dropped;
  std::vector<uint64_t> probes;  // of `received`: SOA queries (the pools' probes)
  // Seconds from the start of the recovery until the node first gave a pod
  // a generation-2 address (infinite if never), one per node.
  std::vector<double> fresh_after;
  // Old-generation (stale) answers to lookups made 2 s or more after the
  // server answered again, and all answers to those lookups.
  uint64_t late_stale = 0;
  uint64_t late_answers = 0;
  // The recovery phase: queries received over capacity x its length, the
  // busiest second over capacity (from the given second of the phase on),
  // and the share of received queries that were dropped.
  double RecoveryLoad() const;
  double RecoveryPeak(int from_second) const;
  double RecoveryDropShare() const;
  // Seconds until `share` of the nodes had served a fresh answer.
  double FreshOn(double share) const;
  std::string Summary() const;
  // Set by RunFleet: where the recovery starts and ends, in seconds.
  int recovery_begin = 0;
  int recovery_end = 0;
};

FleetResult RunFleet(const FleetSchedule& schedule);

}  // namespace nodedns::sim

#endif  // NODEDNS_TESTS_SIM_FLEET_H_
