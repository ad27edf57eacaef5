#ifndef NODEDNS_LIB_RESOLVER_COUNTERS_H_
#define NODEDNS_LIB_RESOLVER_COUNTERS_H_

// What the resolver counts: every query it is given and how it was answered
// (cache, stale, upstream, local error), refreshes, and the outcome of each
// upstream exchange as the resolver judged it. Exported under these names
// (`dnsctl stats` counters, nodedns_<name>_total), with the age of the stale
// data served as a histogram.
//
// Threading: one per worker, written by that worker's thread only.

#include <atomic>
#include <cstdint>

#include "lib/common/counters.h"

#define NODEDNS_RESOLVER_COUNTERS(X)                                                                        \
  X(queries_udp, "Queries received over UDP")                                                               \
  X(queries_tcp, "Queries received over TCP")                                                               \
  X(cache_hits, "Queries answered from a fresh cache entry")                                                \
  X(cache_misses, "Queries not answerable from the cache")                                                  \
  X(coalesced, "Misses that joined an upstream query already in flight for the same key")                   \
  X(answers_noerror, "Answers sent with rcode NOERROR")                                                     \
  X(answers_nxdomain, "Answers sent with rcode NXDOMAIN")                                                   \
  X(answers_servfail, "Answers sent with rcode SERVFAIL")                                                   \
  X(answers_other_rcode, "Answers sent with another rcode (REFUSED, NOTIMP from upstream, ...)")            \
  X(answers_truncated, "UDP answers cut to fit the client's size, sent with TC=1")                          \
  X(dropped_too_short, "Packets shorter than a DNS header, dropped")                                        \
  X(dropped_is_response, "Packets with QR=1, dropped")                                                      \
  X(formerr_sent, "Malformed queries answered FORMERR")                                                     \
  X(notimp_sent, "Queries with an opcode other than QUERY, or zone transfers, answered NOTIMP")             \
  X(aaaa_filtered, "AAAA queries answered NODATA locally by a zone with filter_aaaa")                       \
  X(loop_probes_returned, "Queries for this nodedns's own forwarding-loop probe that came back in, answered SERVFAIL")\
  X(badvers_sent, "Queries with EDNS version above 0, answered BADVERS")                                    \
  X(pending_overflow, "Misses refused (SERVFAIL) because max_pending upstream queries were open")           \
  X(waiters_overflow, "Misses refused (SERVFAIL) because a query had max_waiters clients")                  \
  X(no_route, "Misses with no zone to forward to (SERVFAIL)")                                               \
  X(upstream_answers, "Usable answers received from upstream")                                              \
  X(upstream_timeouts, "Upstream queries that timed out after every attempt")                               \
  X(upstream_errors, "Upstream queries that failed with a network or server error")                         \
  X(upstream_malformed, "Upstream answers that did not parse")                                              \
  X(upstream_mismatched, "Upstream answers for another question, rejected")                                 \
  X(upstream_servfail, "Upstream answers with rcode SERVFAIL or REFUSED")                                   \
  X(stale_answers_timeout, "Stale answers: the refresh missed the client timeout")                          \
  X(stale_answers_failure, "Stale answers: the refresh failed, recently failed, or the zone is degraded")   \
  X(stale_answers_breaker, "Stale answers: every server of the zone has its breaker open")                  \
  X(stale_answers_over_cap, "Stale answers: the refresh waited for room under the upstream limits")         \
  X(refreshes, "Refreshes of expired entries sent upstream")                                                \
  X(refresh_failures, "Refreshes that failed (the entry is kept; recheck after the failure window)")        \
  X(prefetches, "Refreshes of popular entries sent before they expired")                                    \
  X(pin_refreshes, "Queries for pinned names sent by the pin refresher (at start-up, then before expiry)")   \
  X(servfail_cached, "Answers from a briefly cached SERVFAIL (RFC 2308 7)")                                 \
  X(servfail_unreachable, "Misses answered SERVFAIL at once because no server of the zone was usable")      \
  X(last_known_good_kept, "Negative answers not stored over a positive entry while the zone was unhealthy") \
  X(upstream_resent, "Queries for a name sent again: the one in flight was presumed lost")                  \
  X(servfail_local, "SERVFAIL answers of our own making (limits, queue, shutdown): never cached") \
  X(fair_share_refused, "Misses refused (SERVFAIL) under pending pressure: the client held more than its share") \
  X(shed_dropped, "Misses dropped unanswered while overloaded: the client sent more than its share of misses") \
  X(shed_refused, "Misses answered REFUSED while overloaded (TCP, or [shed] answer = \"refused\")") \
  X(shed_overloaded, "Times the worker became overloaded (receive backlog or pending misses over the threshold)") \
  X(shed_clients_untracked, "Misses from clients beyond max_clients, accounted together as one client")

namespace nodedns::resolver {

struct Counters {
  NODEDNS_COUNTER_MEMBERS(NODEDNS_RESOLVER_COUNTERS)
  StaleAgeHistogram stale_age;  // seconds past expiry of the stale answers served
};

}  // namespace nodedns::resolver

#endif  // NODEDNS_LIB_RESOLVER_COUNTERS_H_
