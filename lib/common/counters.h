#ifndef NODEDNS_LIB_COMMON_COUNTERS_H_
#define NODEDNS_LIB_COMMON_COUNTERS_H_

// The building blocks of nodedns's counters: X-macro counter lists,
// histograms and the relaxed-atomic bump. Each component declares its own
// list (lib/server/counters.h, lib/resolver/counters.h,
// lib/upstream/counters.h, lib/cache/cache.h); each outcome and each early
// exit of the data path has its own counter.
//
// Threading: a component's counters are written only by the thread that owns
// the component (one set per worker), with relaxed atomics, so that other
// threads may read a consistent-enough value.

#include <time.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <vector>

// A component declares its counters as an X-macro list next to its code,
//   #define NODEDNS_FOO_COUNTERS(X) X(name, "help") ...
// and expands NODEDNS_COUNTER_MEMBERS(NODEDNS_FOO_COUNTERS) inside its
// counters struct: one relaxed atomic per entry, and ForEachCounter(fn),
// which calls fn(name, help, value) in declaration order. The exported set
// (lib/common/metrics.h) is the composition of those lists.
#define NODEDNS_COUNTER_FIELD_(name, help) std::atomic<uint64_t> name{0};
#define NODEDNS_COUNTER_VISIT_(name, help) fn(#name, help, name.load(std::memory_order_relaxed));
#define NODEDNS_COUNTER_MEMBERS(LIST)        \
  LIST(NODEDNS_COUNTER_FIELD_)               \
  template <typename Fn>                     \
  void ForEachCounter(Fn&& fn) const {       \
    LIST(NODEDNS_COUNTER_VISIT_)             \
  }

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

// Adds one, from the owning thread only.
inline void Bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// Nanoseconds on CLOCK_MONOTONIC, for the hot path's latency measurements and
// heartbeats (one vDSO read; a suspend is not latency). Deadlines use
// SteadyClock (lib/common/clock.h).
inline int64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Records the time since `received_ns` (MonotonicNanos), for `count` answers.
inline void RecordLatency(LatencyHistogram& h, int64_t received_ns, int64_t now_ns, uint64_t count = 1) {
  h.Record(static_cast<double>(now_ns - received_ns) * 1e-9, count);
}

}  // namespace nodedns

#endif  // NODEDNS_LIB_COMMON_COUNTERS_H_
