#ifndef NODEDNS_BENCH_FLEET_PODS_H_
#define NODEDNS_BENCH_FLEET_PODS_H_

// The pods of every node, in one event loop: each pod depends on a few
// Zipf-popular services and external names and looks one of them up at
// Poisson moments, through its node's DNS cache (or the cluster DNS itself
// when there is none), as glibc does: the Kubernetes search path with
// ndots:5, NXDOMAIN, NODATA and SERVFAIL moving on to the next name, each
// query sent up to `attempts` times `attempt_timeout_s` apart (a timeout ends
// the lookup). New pods start during the run, replacing old ones, and look
// up all their dependencies at once: names their node may never have asked.
//
// Single-threaded: RunPods() owns its sockets and returns when the timeline
// has ended and every lookup has finished (or the drain limit passed).

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bench/fleet/model.h"

namespace nodedns::fleet {

struct PodsOptions {
  int pods_per_node = 10;
  double lookups_per_pod_s = 2;
  int service_deps = 4;   // per pod
  int external_deps = 1;  // per pod
  double zipf_s = 1.0;
  double new_pod_interval_s = 20;  // per node, mean (Poisson)
  double attempt_timeout_s = 5;    // glibc: options timeout:5 attempts:2
  int attempts = 2;
  double drain_max_s = 45;  // after the timeline, for lookups still running
  uint64_t seed = 1;
  Catalogue catalogue;
  Timeline timeline;
  std::vector<sockaddr_in> targets;  // each node's DNS server
  std::vector<int> fleet_pids;       // whose RSS is sampled
  std::string trace_path;            // if set: every failed or slow lookup, step by step
  double trace_slow_ms = 1000;       // "slow"
};

struct Pod {
  int ns = 0;
  std::vector<Dep> deps;
};

// The pods the run starts with, node by node: the same for every system
// (the same seed gives the same pods and the same moments).
std::vector<std::vector<Pod>> InitialPods(const PodsOptions& options);
// Queries per second the pods above send when every answer comes at the
// first attempt: the load on a cluster DNS that the pods ask directly.
double SteadyQueryRate(const PodsOptions& options, const std::vector<std::vector<Pod>>& pods);

// "Known": the node had made the same lookup (pod namespace and name)
// before and been answered correctly, so a cache could hold it; "new"
// (fresh here): it had not.
struct PhaseStats {
  uint64_t known = 0, known_ok = 0;
  uint64_t fresh = 0, fresh_ok = 0;
  std::vector<float> latency_ms;     // every lookup's, success or not
};

struct PodsSecond {
  uint32_t started = 0, ok = 0;  // lookups by the second they started in
  uint64_t fleet_rss_kb = 0;
};

struct PodsResult {
  std::vector<PhaseStats> phases;  // as the timeline's
  std::vector<PodsSecond> seconds;
  // Per node, seconds after the recovery until its first fresh answer to a
  // service lookup, and until its last stale one (-1: none); fresh means
  // of the cluster DNS's second generation.
  std::vector<double> first_fresh_s, last_stale_s;
  uint64_t max_fleet_rss_kb = 0;
  uint64_t queries_sent = 0, lookups_unfinished = 0, send_errors = 0;
};

// Runs the pods from t0 (steady_clock nanoseconds) to the end of the
// timeline, then drains.
PodsResult RunPods(const PodsOptions& options, const std::vector<std::vector<Pod>>& initial, int64_t t0_ns);

}  // namespace nodedns::fleet

#endif  // NODEDNS_BENCH_FLEET_PODS_H_
