#ifndef NODEDNS_LIB_UPSTREAM_POOL_H_
#define NODEDNS_LIB_UPSTREAM_POOL_H_

// The servers of one zone as the resolver sees them: a circuit breaker per
// server, failover to the next server whose breaker is closed, probes to open
// ones (a SOA query for the zone, one per probe interval), caps on queries per
// second and in flight (client misses first, refreshes only within
// refresh_share of the caps), the zone's health, and a client timeout that
// adapts to the servers' observed latency.
//
// Threading: one loop thread; timers come from that loop's TimerQueue.
// Lifetime: the transports are not owned and must outlive the pool's use;
// shut them down (their callbacks run with Cancelled) before destroying it.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "lib/common/clock.h"
#include "lib/common/counters.h"
#include "lib/common/timer_queue.h"
#include "lib/upstream/circuit_breaker.h"
#include "lib/upstream/upstream.h"

namespace nodedns::upstream {

struct PoolOptions {
  std::string zone = ".";  // presentation form; the probe asks its SOA
  BreakerOptions breaker;
  absl::Duration probe_timeout = absl::Milliseconds(500);
  int max_qps = 2000;        // 0: no cap
  int max_inflight = 1000;   // 0: no cap
  double refresh_share = 0.5;  // refreshes may use at most this share of each cap
  // While degraded, at most this many refreshes in flight: a suspect upstream
  // gets a trickle, not one refresh per stale name, until its breaker decides.
  int degraded_max_refreshes = 8;
  absl::Duration degraded_hold = absl::Seconds(5);
  // 0: adaptive, clamp(adaptive_factor x p99 latency, adaptive_min, adaptive_max).
  absl::Duration client_timeout = absl::ZeroDuration();
  double adaptive_factor = 4;
  absl::Duration adaptive_min = absl::Milliseconds(50);
  absl::Duration adaptive_max = absl::Milliseconds(1800);
  // Until 16 latency samples exist (start-up, a reload): short enough that a
  // restart in the middle of an outage answers from the snapshot within a
  // second, long enough for any upstream a node should depend on.
  absl::Duration initial_client_timeout = absl::Milliseconds(400);
};

struct ServerStatus {
  std::string name;
  CircuitBreaker::State state;
  absl::Time state_since;
  uint64_t transitions;
  int consecutive_failures;
  uint64_t queries;   // client queries and refreshes sent to it (not probes)
  uint64_t failures;  // of those: timeouts, network errors, SERVFAIL/REFUSED/NOTIMP
  absl::Duration srtt;  // smoothed round-trip time of its good answers; 0 before any
};

class UpstreamPool final : public Upstream {
 public:
  struct ServerSpec {
    std::string name;  // "ADDR:PORT", for logs
    Transport* transport;
  };
  UpstreamPool(const PoolOptions& options, std::vector<ServerSpec> servers, const SteadyClock* clock,
               TimerQueue* timers, Counters* counters, uint32_t seed);
  ~UpstreamPool() override;

  SendResult Send(absl::Span<const uint8_t> query, Priority priority, Callback done) override;
  Health health() const override;
  absl::Duration client_timeout() const override;
  void ReportClientTimeout() override;
  absl::Time last_recovery() const override { return last_recovery_; }
  bool recently_unhealthy() const override {
    return health() != Health::kHealthy || clock_->Now() < last_bad_at_ + options_.degraded_hold;
  }

  std::vector<ServerStatus> servers() const;
  const std::string& zone() const { return options_.zone; }
  absl::Duration p99_latency() const;  // ZeroDuration without samples
  size_t inflight() const { return inflight_; }
  // Burst size of the qps cap: a tenth of a second's worth.
  double bucket_capacity() const { return std::max(1.0, options_.max_qps / 10.0); }

 private:
  struct Server;
  struct Request;
  bool Admit(Priority priority, absl::Time now);
  // The first server whose breaker is closed and whose bit is not in `tried`;
  // servers_.size() if there is none.
  size_t NextServer(uint32_t tried) const;
  void Dispatch(const std::shared_ptr<Request>& req, size_t index);
  void OnResult(const std::shared_ptr<Request>& req, size_t index, const absl::Status& status,
                absl::Span<const uint8_t> answer);
  void OnFailure(size_t index, absl::Time now);
  void MarkBad(absl::Time now);
  void LogState(Server& s, absl::Time now, const std::string& what);
  void ScheduleProbe(size_t index);
  void SendProbe(size_t index);

  const PoolOptions options_;
  std::vector<std::unique_ptr<Server>> servers_;
  const SteadyClock* const clock_;
  TimerQueue* const timers_;
  Counters* const counters_;
  std::vector<uint8_t> probe_query_;
  // Caps: a token bucket for qps, a count for in flight.
  double tokens_;
  absl::Time tokens_at_ = absl::InfinitePast();
  size_t inflight_ = 0;
  size_t refresh_inflight_ = 0;
  absl::Time degraded_until_ = absl::InfinitePast();
  absl::Time last_bad_at_ = absl::InfinitePast();  // last failure or slow answer
  absl::Time last_good_sent_ = absl::InfinitePast();  // send time of the newest good answer
  absl::Time last_recovery_ = absl::InfinitePast();
  // Latency of good answers, the last kSamples.
  static constexpr size_t kSamples = 256;
  std::vector<absl::Duration> latency_;
  size_t latency_next_ = 0;
  // client_timeout() is asked for on every upstream query: recomputed from
  // the samples every kRecomputeEvery new samples, not every time.
  static constexpr int kRecomputeEvery = 32;
  int samples_since_recompute_ = kRecomputeEvery;
  mutable absl::Duration adaptive_timeout_;
  void RecordLatency(absl::Duration rtt);
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace nodedns::upstream

#endif  // NODEDNS_LIB_UPSTREAM_POOL_H_
