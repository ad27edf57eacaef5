#ifndef NODEDNS_LIB_UPSTREAM_SUMMARY_H_
#define NODEDNS_LIB_UPSTREAM_SUMMARY_H_

// What the operations side shows of one upstream server (dnsctl upstreams,
// /metrics), gathered over the workers by the server. A plain value: the
// control code renders it without depending on the data plane.

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace nodedns::upstream {

// One upstream server over all workers: the breaker state is "open" if it is
// open on any worker; counts are sums.
struct UpstreamSummary {
  std::string zone;
  std::string server;
  bool open = false;
  int workers_open = 0;
  absl::Time state_since;  // of the reported state: the earliest worker's
  uint64_t transitions = 0;
  int consecutive_failures = 0;  // the highest over workers
  uint64_t queries = 0;
  uint64_t failures = 0;
  absl::Duration srtt;      // mean over workers with samples
  absl::Duration zone_p99;  // the zone's highest p99 over workers
  // The zone on all workers: its worst health ("healthy", "degraded",
  // "down"), and its concurrency limits, queries in flight and queued, summed.
  std::string zone_health = "healthy";
  double zone_limit = 0;
  uint64_t zone_inflight = 0;
  uint64_t zone_queued = 0;
};

}  // namespace nodedns::upstream

#endif  // NODEDNS_LIB_UPSTREAM_SUMMARY_H_
