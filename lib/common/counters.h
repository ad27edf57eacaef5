#ifndef NODEDNS_LIB_COMMON_COUNTERS_H_
#define NODEDNS_LIB_COMMON_COUNTERS_H_

// Every counter nodedns keeps, declared once. Each outcome and each early
// exit of the data path has its own. The same list feeds the log summary,
// `dnsctl stats` and the Prometheus endpoint (lib/control/stats.h).
//
// Threading: one Counters per worker, written only by that worker's thread
// (relaxed atomics, so other threads may read a consistent-enough value).

#include <time.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <vector>

#define NODEDNS_COUNTERS(X)                                                                        \
  X(queries_udp, "Queries received over UDP")                                                      \
  X(queries_tcp, "Queries received over TCP")                                                      \
  X(cache_hits, "Queries answered from a fresh cache entry")                                       \
  X(cache_misses, "Queries not answerable from the cache")                                         \
  X(coalesced, "Misses that joined an upstream query already in flight for the same key")          \
  X(answers_noerror, "Answers sent with rcode NOERROR")                                            \
  X(answers_nxdomain, "Answers sent with rcode NXDOMAIN")                                          \
  X(answers_servfail, "Answers sent with rcode SERVFAIL")                                          \
  X(answers_other_rcode, "Answers sent with another rcode (REFUSED, NOTIMP from upstream, ...)")   \
  X(answers_truncated, "UDP answers cut to fit the client's size, sent with TC=1")                 \
  X(dropped_too_short, "Packets shorter than a DNS header, dropped")                               \
  X(dropped_is_response, "Packets with QR=1, dropped")                                             \
  X(dropped_oversize, "UDP queries larger than the receive buffer, dropped")                       \
  X(formerr_sent, "Malformed queries answered FORMERR")                                            \
  X(notimp_sent, "Queries with an opcode other than QUERY, or zone transfers, answered NOTIMP")    \
  X(badvers_sent, "Queries with EDNS version above 0, answered BADVERS")                           \
  X(pending_overflow, "Misses refused (SERVFAIL) because max_pending upstream queries were open")  \
  X(waiters_overflow, "Misses refused (SERVFAIL) because a query had max_waiters clients")         \
  X(no_route, "Misses with no zone to forward to (SERVFAIL)")                                      \
  X(upstream_queries, "Queries sent upstream")                                                     \
  X(upstream_answers, "Usable answers received from upstream")                                     \
  X(upstream_timeouts, "Upstream queries that timed out after every attempt")                      \
  X(upstream_errors, "Upstream queries that failed with a network or server error")                \
  X(upstream_malformed, "Upstream answers that did not parse")                                     \
  X(upstream_mismatched, "Upstream answers for another question, rejected")                        \
  X(upstream_ignored, "Packets on an upstream query's socket that did not answer it (ID, question, case, QR=0): ignored") \
  X(upstream_servfail, "Upstream answers with rcode SERVFAIL or REFUSED")                          \
  X(cache_inserts, "Answers stored in the cache")                                                  \
  X(stale_answers_timeout, "Stale answers: the refresh missed the client timeout")                 \
  X(stale_answers_failure, "Stale answers: the refresh failed, recently failed, or the zone is degraded") \
  X(stale_answers_breaker, "Stale answers: every server of the zone has its breaker open")          \
  X(stale_answers_over_cap, "Stale answers: the refresh waited for room under the upstream limits")   \
  X(refreshes, "Refreshes of expired entries sent upstream")                                       \
  X(refresh_failures, "Refreshes that failed (the entry is kept; recheck after the failure window)") \
  X(prefetches, "Refreshes of popular entries sent before they expired")                           \
  X(servfail_cached, "Answers from a briefly cached SERVFAIL (RFC 2308 7)")                        \
  X(servfail_unreachable, "Misses answered SERVFAIL at once because no server of the zone was usable") \
  X(last_known_good_kept, "Negative answers not stored over a positive entry while the zone was unhealthy") \
  X(upstream_refused_cap, "Queries refused at once by the upstream limits (qps ceiling, queue full)") \
  X(upstream_queued, "Queries that waited in the queue for room under the concurrency limit")      \
  X(upstream_queue_timeouts, "Queued queries that found no room within the queue timeout")         \
  X(upstream_presumed_lost, "Queries no longer counted against the limit: a later one was answered first") \
  X(upstream_resent, "Queries for a name sent again: the one in flight was presumed lost")         \
  X(servfail_local, "SERVFAIL answers of our own making (limits, queue, shutdown): never cached")  \
  X(upstream_failovers, "Queries resent to another server of the zone after a failure")            \
  X(breaker_opened, "Circuit breakers that opened")                                                \
  X(breaker_closed, "Circuit breakers that closed again")                                          \
  X(probes_sent, "Probe queries sent to servers with an open breaker")                             \
  X(zone_probes_sent, "Probe queries sent to a zone after a failure, until a server answers again") \
  X(udp_send_errors, "UDP answers the kernel refused to send")                                     \
  X(tcp_accepted, "TCP connections accepted")                                                      \
  X(tcp_rejected, "TCP connections closed at once because max_tcp_connections were open")          \
  X(tcp_idle_closed, "TCP connections closed after the idle timeout")                              \
  X(tcp_bad_frames, "TCP connections closed for a frame shorter than a DNS header")                \
  X(tcp_replies_dropped, "Answers for TCP connections that had closed meanwhile")                  \
  X(tcp_slow_reader_closed, "TCP connections closed because the client did not read its answers") \
  /* Fairness and shedding */                                                                     \
  X(fair_share_pushed_out, "Queued upstream queries pushed out of a full queue for a client that held fewer") \
  X(fair_share_refused, "Misses refused (SERVFAIL) under pending pressure: the client held more than its share") \
  X(shed_dropped, "Misses dropped unanswered while overloaded: the client sent more than its share of misses") \
  X(shed_refused, "Misses answered REFUSED while overloaded (TCP, or [shed] answer = \"refused\")") \
  X(shed_overloaded, "Times the worker became overloaded (receive backlog or pending misses over the threshold)") \
  X(shed_clients_untracked, "Misses from clients beyond max_clients, accounted together as one client")

namespace nodedns {

// A histogram with fixed upper bounds (the last bucket is +Inf), written by
// one thread, read by any. Bounds are in the unit of the recorded values.
template <const double* kBounds, size_t kNumBounds>
struct Histogram {
  static constexpr size_t kBuckets = kNumBounds + 1;
  static const double* bounds() { return kBounds; }
  std::atomic<uint64_t> buckets[kBuckets] = {};
  std::atomic<double> sum{0};

  // `count` samples of the same value.
  void Record(double value, uint64_t count = 1) {
    size_t i = 0;
    while (i < kNumBounds && value > kBounds[i]) ++i;
    buckets[i].store(buckets[i].load(std::memory_order_relaxed) + count, std::memory_order_relaxed);
    sum.store(sum.load(std::memory_order_relaxed) + value * static_cast<double>(count), std::memory_order_relaxed);
  }
};

// A plain copy of a histogram, for summing workers and for export.
struct HistogramValues {
  std::vector<double> bounds;     // upper bounds, without +Inf
  std::vector<uint64_t> buckets;  // per bucket (not cumulative), bounds.size() + 1
  double sum = 0;

  template <typename H>
  void Add(const H& h) {
    if (buckets.empty()) {
      bounds.assign(H::bounds(), H::bounds() + H::kBuckets - 1);
      buckets.assign(H::kBuckets, 0);
    }
    for (size_t i = 0; i < H::kBuckets; ++i) buckets[i] += h.buckets[i].load(std::memory_order_relaxed);
    sum += h.sum.load(std::memory_order_relaxed);
  }
  uint64_t count() const {
    uint64_t n = 0;
    for (uint64_t b : buckets) n += b;
    return n;
  }
  // The q-quantile (0 < q < 1), interpolated linearly inside its bucket as
  // Prometheus's histogram_quantile() does; the +Inf bucket reports the last
  // finite bound. 0 without samples.
  double Quantile(double q) const;
};

// Age of the stale data served, in seconds past expiry.
inline constexpr double kStaleAgeBounds[] = {1, 5, 30, 60, 300, 1800, 3600, 21600, 86400, 259200};
// Time from receiving a query to sending its answer, in seconds.
inline constexpr double kLatencyBounds[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                            0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,   5};
using StaleAgeHistogram = Histogram<kStaleAgeBounds, std::size(kStaleAgeBounds)>;
using LatencyHistogram = Histogram<kLatencyBounds, std::size(kLatencyBounds)>;

struct Counters {
#define NODEDNS_DECLARE_COUNTER(name, help) std::atomic<uint64_t> name{0};
  NODEDNS_COUNTERS(NODEDNS_DECLARE_COUNTER)
#undef NODEDNS_DECLARE_COUNTER
  StaleAgeHistogram stale_age;
  LatencyHistogram latency;
};

// A plain copy of counter values, for summing workers and for export.
struct CounterValues {
#define NODEDNS_DECLARE_VALUE(name, help) uint64_t name = 0;
  NODEDNS_COUNTERS(NODEDNS_DECLARE_VALUE)
#undef NODEDNS_DECLARE_VALUE

  HistogramValues stale_age;
  HistogramValues latency;

  void Add(const Counters& c) {
#define NODEDNS_ADD_COUNTER(name, help) name += c.name.load(std::memory_order_relaxed);
    NODEDNS_COUNTERS(NODEDNS_ADD_COUNTER)
#undef NODEDNS_ADD_COUNTER
    stale_age.Add(c.stale_age);
    latency.Add(c.latency);
  }
  // Calls fn(name, help, value) for every counter, in declaration order.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
#define NODEDNS_VISIT_COUNTER(name, help) fn(#name, help, name);
    NODEDNS_COUNTERS(NODEDNS_VISIT_COUNTER)
#undef NODEDNS_VISIT_COUNTER
  }
};

// Adds one, from the owning thread only.
inline void Bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

inline void RecordStaleAge(Counters& c, uint32_t seconds) { c.stale_age.Record(seconds); }

// Nanoseconds on CLOCK_MONOTONIC, for the hot path's latency measurements and
// heartbeats (one vDSO read; a suspend is not latency). Deadlines use
// SteadyClock (lib/common/clock.h).
inline int64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Records the time since `received_ns` (MonotonicNanos) in c.latency, for
// `count` answers.
inline void RecordLatency(Counters& c, int64_t received_ns, int64_t now_ns, uint64_t count = 1) {
  c.latency.Record(static_cast<double>(now_ns - received_ns) * 1e-9, count);
}

}  // namespace nodedns

#endif  // NODEDNS_LIB_COMMON_COUNTERS_H_
