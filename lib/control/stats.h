#ifndef NODEDNS_LIB_CONTROL_STATS_H_
#define NODEDNS_LIB_CONTROL_STATS_H_

// What nodedns is doing, gathered once and rendered two ways: JSON (the
// control socket's `stats`; dnsctl formats it for humans) and the Prometheus
// text format (/metrics). Both render the same exported set
// (lib/common/metrics.h), composed of each component's own list, so a
// counter declared by a component appears in both.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/time/time.h"
#include "lib/common/metrics.h"
#include "lib/control/stream_server.h"
#include "lib/mirror/status.h"
#include "lib/snapshot/stats.h"
#include "lib/upstream/summary.h"

namespace nodedns::control {

using SnapshotStats = snapshot::KeeperStats;

// Every absl::Time here is on the steady clock (lib/common/clock.h) except
// wall_now, which converts them for display.
struct StatsSnapshot {
  std::string version;
  absl::Time now;
  absl::Time wall_now;
  absl::Time started_at;
  int workers = 1;
  MetricSet metrics;  // every component's counters and gauges, and the histograms
  std::vector<upstream::UpstreamSummary> upstreams;
  std::string upstreams_error;  // set when a worker did not answer in time
  SnapshotStats snapshot;  // its numbers are in `metrics` too; this adds paths, errors, times
  absl::Time last_reload = absl::InfinitePast();
  // Under --supervise: how the previous daemon ended ("" for none); the
  // supervisor's counts are in `metrics` (group "supervisor").
  std::string supervisor_last_exit;
  std::vector<mirror::MirrorStatus> mirrors;  // per zone with mirror = true
  ConnectionStats control_connections;
  ConnectionStats http_connections;
};

// Totals operators ask for first, from the per-outcome counters.
struct Totals {
  uint64_t queries;
  uint64_t stale_answers;
  uint64_t upstream_failures;
  double hit_ratio;  // cache_hits / (cache_hits + cache_misses); 0 without queries
};
Totals ComputeTotals(const MetricSet& m);
// The upper bound of the highest non-empty bucket (+Inf if that is the
// last); 0 without samples. "max" as far as a histogram knows it.
double MaxBucket(const HistogramValues& h);

nlohmann::json StatsJson(const StatsSnapshot& s);
nlohmann::json UpstreamsJson(const StatsSnapshot& s);
std::string PrometheusText(const StatsSnapshot& s);

}  // namespace nodedns::control

#endif  // NODEDNS_LIB_CONTROL_STATS_H_
