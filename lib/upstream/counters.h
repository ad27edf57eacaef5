#ifndef NODEDNS_LIB_UPSTREAM_COUNTERS_H_
#define NODEDNS_LIB_UPSTREAM_COUNTERS_H_

// What the upstream side counts: queries sent, the limits' decisions,
// failover, breakers and probes. Exported under these names (`dnsctl stats`
// counters, nodedns_<name>_total).
//
// Threading: one per worker, written by that worker's thread only.

#include <atomic>
#include <cstdint>

#include "lib/common/counters.h"

#define NODEDNS_UPSTREAM_COUNTERS(X)                                                                                      \
  X(upstream_queries, "Queries sent upstream")                                                                            \
  X(upstream_ignored, "Packets on an upstream query's socket that did not answer it (ID, question, case, QR=0): ignored") \
  X(upstream_refused_cap, "Queries refused at once by the upstream limits (qps ceiling, queue full)")                     \
  X(upstream_queued, "Queries that waited in the queue for room under the concurrency limit")                             \
  X(upstream_paced, "Queries started while the concurrency limit was below one (one in flight, paced)")                   \
  X(upstream_retry_answered, "Answers to a retry: the attempt before it got no answer (a loss, as the limiter sees it)")  \
  X(upstream_queue_timeouts, "Queued queries that found no room within the queue timeout")                                \
  X(upstream_presumed_lost, "Queries no longer counted against the limit: a later one was answered first")                \
  X(upstream_failovers, "Queries resent to another server of the zone after a failure")                                   \
  X(breaker_opened, "Circuit breakers that opened")                                                                       \
  X(breaker_closed, "Circuit breakers that closed again")                                                                 \
  X(probes_sent, "Probe queries sent to servers with an open breaker")                                                    \
  X(zone_probes_sent, "Probe queries sent to a zone after a failure, until a server answers again") \
  X(fair_share_pushed_out, "Queued upstream queries pushed out of a full queue for a client that held fewer")

namespace nodedns::upstream {

struct Counters {
  NODEDNS_COUNTER_MEMBERS(NODEDNS_UPSTREAM_COUNTERS)
};

}  // namespace nodedns::upstream

#endif  // NODEDNS_LIB_UPSTREAM_COUNTERS_H_
