#ifndef NODEDNS_BENCH_FLEET_RESULTS_H_
#define NODEDNS_BENCH_FLEET_RESULTS_H_

// One system's run as files, and the table over all systems.
//
// <dir>/<system>.tsv: "key<TAB>value" lines (per phase: answered shares,
// latency percentiles, cluster DNS load; freshness after the recovery;
// memory). <dir>/<system>.series.tsv: one line per second of the timeline
// (cluster DNS load and pod success), for the plot.

#include <string>
#include <vector>

#include "bench/fleet/pods.h"
#include "bench/fleet/standin.h"

namespace nodedns::fleet {

struct RunInfo {
  std::string system;
  int nodes = 0;
  int pods_per_node = 0;
  double lookups_per_pod_s = 0;
  double capacity_qps = 0;
  double pod_query_rate = 0;  // what the pods send when asking the cluster DNS directly
  uint32_t ttl = 0;
  std::string timeline_spec;
};

// False (and a message on stderr) if a file cannot be written.
bool WriteResults(const std::string& dir, const RunInfo& info, const Timeline& timeline, const PodsResult& pods,
                  const std::vector<StandInSecond>& cluster);

// Prints the table for `systems` (in that order) from the files in `dir`;
// a system without a file gets "not run". Returns false if none had one.
bool PrintReport(const std::string& dir, const std::vector<std::string>& systems);

}  // namespace nodedns::fleet

#endif  // NODEDNS_BENCH_FLEET_RESULTS_H_
