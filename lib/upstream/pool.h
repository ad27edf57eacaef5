#ifndef NODEDNS_LIB_UPSTREAM_POOL_H_
#define NODEDNS_LIB_UPSTREAM_POOL_H_

// The servers of one zone as the resolver sees them:
//  - a circuit breaker per server, failover to the next server whose breaker
//    is closed, probes to open ones (a SOA query for the zone, one per probe
//    interval);
//  - zone probes: after a failure or a missed client timeout, until a query
//    sent after it is answered promptly,
//    one probe per probe interval to the first server whose breaker is
//    closed, so that recovery is noticed within about a second even when no
//    breaker opened (a few names asked now and then never fail three times
//    in a row);
//  - an adaptive concurrency limit (limiter.h) for the queries in flight:
//    over it, queries wait in a bounded queue (client misses before
//    refreshes; client misses one FIFO per client, served round robin, and
//    when the queue is full the longest client's newest is pushed out for a
//    client that holds fewer: fair_queue.h) for at most queue_timeout, then
//    fail with ResourceExhausted; refreshes may use only refresh_share of the
//    limit;
//  - a high safety ceiling on queries per second (max_qps);
//  - the zone's health, and a client timeout that adapts to the servers'
//    observed latency. A new pool is degraded until its first good answer
//    (nodedns restarted in the middle of an outage answers stale at once, and
//    the first zone probe decides); a reload carries the state over
//    (AdoptState).
//
// Threading: one loop thread; timers come from that loop's TimerQueue.
// Lifetime: the transports are not owned and must outlive the pool's use;
// CancelQueued() and then shut the transports down (their callbacks run with
// Cancelled) before destroying it.

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "lib/common/clock.h"
#include "lib/upstream/counters.h"
#include "lib/common/timer_queue.h"
#include "lib/upstream/circuit_breaker.h"
#include "lib/upstream/fair_queue.h"
#include "lib/upstream/limiter.h"
#include "lib/upstream/options.h"
#include "lib/upstream/upstream.h"

namespace nodedns::upstream {


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

// The zone as a whole, for dnsctl and metrics.
struct ZoneStatus {
  Health health;
  double limit;        // the concurrency limit now (below 1: paced)
  size_t inflight;
  size_t queued;
  absl::Duration baseline_rtt;  // the limiter's; 0 before any sample
  absl::Time last_good;         // InfinitePast if never
  bool probing;  // every open breaker has a probe scheduled or in flight
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

  SendResult Send(absl::Span<const uint8_t> query, Priority priority, FlowId flow, Callback done) override;
  Health health() const override;
  absl::Duration client_timeout() const override;
  void ReportClientTimeout() override;
  absl::Time last_good_answer() const override { return last_good_at_; }
  absl::Time newest_prompt_send() const override { return last_prompt_sent_; }
  bool recently_unhealthy() const override {
    return health() != Health::kHealthy || clock_->Now() < last_bad_at_ + options_.degraded_hold;
  }

  // Reload: takes over what `previous` (the same zone in the generation being
  // replaced) learnt of the servers both have: breakers (an open one keeps
  // probing), latency, counts, health, the concurrency limit. Call before the
  // first Send.
  void AdoptState(const UpstreamPool& previous);
  // Fails every queued query with Cancelled (reload drain, shutdown).
  void CancelQueued();

  std::vector<ServerStatus> servers() const;
  ZoneStatus zone_status() const;
  const std::string& zone() const { return options_.zone; }
  absl::Duration p99_latency() const;  // ZeroDuration without samples
  size_t inflight() const { return inflight_; }
  size_t queued() const { return client_queue_.size() + refresh_queue_.size(); }
  // Distinct clients with misses queued.
  size_t queued_flows() const { return client_queue_.flows(); }
  int limit() const { return limiter_.limit(); }
  // Burst size of the qps ceiling: a tenth of a second's worth.
  double bucket_capacity() const { return std::max(1.0, options_.max_qps / 10.0); }

 private:
  struct Server;
  struct Request;
  bool TakeToken(absl::Time now);
  bool HasRoom(Priority priority, absl::Time now) const;
  // Starts queued queries while there is room; fails those past their
  // deadline. Runs from callbacks and timers, never inside Send().
  void Pump();
  void ArmQueueTimer();
  void Start(const std::shared_ptr<Request>& req, absl::Time now);
  // The first server whose breaker is closed and whose bit is not in `tried`;
  // servers_.size() if there is none.
  size_t NextServer(uint32_t tried) const;
  void Dispatch(const std::shared_ptr<Request>& req, size_t index);
  // Stops counting `req` against the limit (answered, or presumed lost).
  void Uncount(Request& req);
  void ForgetLostBefore(absl::Time sent_before);
  void OnResult(const std::shared_ptr<Request>& req, size_t index, const absl::Status& status,
                absl::Span<const uint8_t> answer);
  void OnFailure(size_t index, absl::Time now, bool drop);
  void OnGood(Server& s, absl::Time now);
  // A prompt good answer to a query (or probe) sent at `sent_at`.
  void NotePrompt(absl::Time sent_at);
  void MarkBad(absl::Time now);
  // A failure, an unanswered zone probe or a missed client timeout: the zone
  // is degraded (MarkBad) and suspect until a query sent after `now` is
  // answered promptly. (A slow answer only degrades it.)
  void Suspect(absl::Time now);
  void LogState(Server& s, absl::Time now, const std::string& what);
  void ScheduleProbe(size_t index);
  // A SOA probe to server `index`; `zone_probe` when its breaker is closed.
  void SendProbe(size_t index, bool zone_probe);
  void ScheduleZoneProbe(absl::Time now);
  // A prompt answer came to a query sent after the last suspicion: the zone
  // answers again, and zone probing is over.
  bool AnsweredSinceSuspicion() const { return last_prompt_sent_ > last_suspect_at_; }

  const PoolOptions options_;
  std::vector<std::unique_ptr<Server>> servers_;
  const SteadyClock* const clock_;
  TimerQueue* const timers_;
  Counters* const counters_;
  std::vector<uint8_t> probe_query_;
  ConcurrencyLimiter limiter_;
  std::mt19937 rng_;
  // The qps ceiling: a token bucket.
  double tokens_;
  absl::Time tokens_at_ = absl::InfinitePast();
  // Queries counted against the limit, by send time (ForgetLostBefore).
  std::multimap<absl::Time, Request*> in_flight_;
  size_t inflight_ = 0;
  size_t refresh_inflight_ = 0;
  // How much earlier than an answered query another must have been sent, and
  // still be out, to be presumed lost (UDP may reorder a little).
  static constexpr absl::Duration kReorderSlack = absl::Milliseconds(10);
  // Over the limit: client misses, fair between clients (round robin), and
  // refreshes (FIFO, only when no client waits).
  FairQueue<std::shared_ptr<Request>> client_queue_;
  std::deque<std::shared_ptr<Request>> refresh_queue_;
  // Pushed out of a full queue: failed from the next Pump (never inside Send).
  std::vector<std::shared_ptr<Request>> pushed_out_;
  // Makes room in a full queue for a client miss of `flow`: pushes out the
  // newest refresh, or the newest miss of the longest client queue if it
  // holds more than `flow` would. False if there is nothing fair to push out.
  bool PushOutFor(FlowId flow);
  TimerQueue::Id queue_timer_ = 0;
  absl::Time queue_timer_at_ = absl::InfiniteFuture();
  // While the limit is below one: no query starts before then.
  absl::Time next_paced_start_ = absl::InfinitePast();
  // Degraded until the first good answer: a new pool knows nothing yet.
  absl::Time degraded_until_ = absl::InfiniteFuture();
  absl::Time last_bad_at_ = absl::InfinitePast();  // last failure or slow answer
  absl::Time last_good_at_ = absl::InfinitePast();  // receipt of the newest usable answer
  // The newest failure or missed client timeout: zone probes run while it is
  // newer than the newest good answer.
  absl::Time last_suspect_at_ = absl::InfinitePast();
  // The send time of the newest query answered promptly (probes included).
  absl::Time last_prompt_sent_ = absl::InfinitePast();
  // Zone probes, while a failure is newer than the newest good answer.
  TimerQueue::Id zone_probe_timer_ = 0;
  int zone_probe_failures_ = 0;
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
