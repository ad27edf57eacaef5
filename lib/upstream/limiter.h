#ifndef NODEDNS_LIB_UPSTREAM_LIMITER_H_
#define NODEDNS_LIB_UPSTREAM_LIMITER_H_

// An adaptive concurrency limit for the queries a worker sends to one zone:
// how many may be in flight at once. It protects an upstream that struggles
// and stays out of the way of one that does not.
//
// The algorithm borrows from TCP congestion control, as Netflix's
// concurrency-limits and Envoy's adaptive concurrency filter do:
//  - Latency gradient (Netflix Gradient2, Envoy's gradient controller): the
//    baseline is the smallest round-trip time of the last `baseline_window`
//    (a windowed minimum, like Envoy's minRTT); the current RTT is a short
//    moving average. When the current RTT exceeds tolerance x baseline + slack
//    (20 ms: a node-local upstream answers in a millisecond, and a busy
//    nodedns's own loop delays its answers by a few),
//    the upstream is queueing: the limit is multiplied by
//    max(0.5, threshold / current RTT), at most once per current RTT.
//  - Drops (AIMD): a timeout or network error, or an answer that came only
//    to a retry (the attempt before was lost; OnLoss), multiplies the limit by
//    `backoff`, at most once per `drop_interval`, down to `floor`, which may
//    be below one query in flight: then the pool keeps at most one in flight
//    and starts the next one current RTT / limit after the last (pacing, as
//    a congestion window below one segment). A fleet of N nodes keeps
//    N x limit queries at a server that drops: only a floor below one lets
//    thousands of nodes fit a recovering CoreDNS's queue. The latency
//    gradient stops at `min_limit` (latency is not loss: a forwarder behind
//    which some names take 100 ms must not be paced). SERVFAIL/REFUSED are not
//    congestion (a server that answers quickly is not overloaded); they are the
//    circuit breakers' business.
//  - Growth: only while the limit is in use (at least half of it in flight
//    when the query was sent; an idle limit says nothing, as in Gradient2).
//    Below the slow-start threshold +1 per good answer, which doubles the
//    limit every round trip (TCP slow start); above it +1 per round trip.
//    Below one query in flight, a prompt answer (within tolerance of the
//    baseline) restores one; a late one changes nothing. A
//    decrease sets the threshold to the new limit, but never below
//    initial_limit: up to there the limit slow-starts back.
//  - Recovery: when a zone answers again after an outage, the limit restarts
//    at `min_limit` and slow-starts up to `initial_limit`, so thousands of
//    nodes coming back together ramp up instead of stampeding a recovering
//    CoreDNS; the latency gradient then brakes each node as that server slows.
//  - A cold start is not a recovery: the limit starts at `initial_limit`, and
//    slow start takes it further while the upstream keeps its latency.
// `max_limit` is the safety ceiling ([upstream] max_inflight).
//
// Pure logic on times given by the caller; not thread-safe.

#include <algorithm>
#include <cstdint>

#include "absl/time/time.h"
#include "lib/upstream/options.h"

namespace nodedns::upstream {


class ConcurrencyLimiter {
 public:
  explicit ConcurrencyLimiter(const LimiterOptions& options)
      : options_(Sane(options)), limit_(options_.initial_limit), ssthresh_(options_.max_limit) {}

  // Queries that may be in flight at once (at least 1: below one, limit()
  // is 1 and the pool paces its starts by pacing_gap()).
  int limit() const { return std::max(1, static_cast<int>(limit_)); }
  double limit_value() const { return limit_; }
  bool pacing() const { return limit_ < 1.0; }
  // Below one query in flight: the time between two starts, current RTT /
  // limit (the RTT of the last answers; 100 ms before any), at most
  // kMaxPacingGap: a fleet of N nodes at the floor sends at most N queries a
  // second per zone (as many as its probes), and a server that answers
  // promptly again is asked within a second.
  static constexpr absl::Duration kMaxPacingGap = absl::Seconds(1);
  absl::Duration pacing_gap() const {
    if (!pacing()) return absl::ZeroDuration();
    absl::Duration rtt = std::max(current_, baseline_rtt());
    if (rtt <= absl::ZeroDuration()) rtt = absl::Milliseconds(100);
    return std::min(kMaxPacingGap, rtt / limit_);
  }
  bool in_slow_start() const { return limit_ < ssthresh_; }
  // 0 before any sample.
  absl::Duration baseline_rtt() const { return std::min(min_[0], min_[1]) == absl::InfiniteDuration()
                                                   ? absl::ZeroDuration()
                                                   : std::min(min_[0], min_[1]); }
  absl::Duration current_rtt() const { return current_; }
  uint64_t decreases() const { return decreases_; }

  // A good answer that came back within the client timeout, `rtt` after it
  // was sent with `inflight` queries in flight (itself included).
  void OnSample(absl::Duration rtt, int inflight, absl::Time now) {
    UpdateBaseline(rtt, now);
    absl::Duration threshold = baseline_rtt() * options_.tolerance + options_.rtt_slack;
    if (limit_ < 1.0 && rtt <= threshold) {
      // Paced, and this answer came promptly: the server is no longer
      // queueing. One in flight again, and slow start from there.
      limit_ = 1.0;
      current_ = rtt;
      return;
    }
    current_ = current_ == absl::ZeroDuration() ? rtt : (current_ * 4 + rtt) / 5;
    if (limit_ < 1.0) return;  // paced, and a late answer: stays paced
    if (current_ > threshold) {
      // Latency cuts down to min_limit, never below (and never raise a
      // limit that drops took below it).
      if (now - last_decrease_ >= current_ && limit_ > options_.min_limit) {
        double gradient = std::max(0.5, absl::FDivDuration(threshold, current_));
        Decrease(std::max<double>(options_.min_limit, limit_ * gradient), now);
      }
      return;
    }
    if (inflight * 2 < limit_) return;  // not using the limit: no evidence it could be higher
    limit_ += in_slow_start() ? 1.0 : 1.0 / limit_;
    limit_ = std::min<double>(limit_, options_.max_limit);
  }
  // A timeout or a network error.
  void OnDrop(absl::Time now) {
    if (now - last_decrease_ < options_.drop_interval) return;
    Decrease(limit_ * options_.backoff, now);
  }
  // An answer came to a retry, and the attempt before it, sent at `sent`,
  // got none: a loss the retry hid, as TCP's fast retransmit sees one. The
  // same backoff as a drop, except for attempts sent before the last
  // recovery: those were lost to the outage, not to congestion now.
  void OnLoss(absl::Time sent, absl::Time now) {
    if (sent < recovered_at_) return;
    OnDrop(now);
  }
  // Reload: what the same zone's limiter in the previous generation learnt
  // (clamped to this one's options).
  void AdoptState(const ConcurrencyLimiter& other) {
    limit_ = std::clamp<double>(other.limit_, options_.floor, options_.max_limit);
    ssthresh_ = other.ssthresh_;
    current_ = other.current_;
    min_[0] = other.min_[0];
    min_[1] = other.min_[1];
    window_start_ = other.window_start_;
    last_decrease_ = other.last_decrease_;
    recovered_at_ = other.recovered_at_;
    decreases_ = other.decreases_;
  }
  // The zone answers again after an outage: start small and slow-start.
  void OnRecovery(absl::Time now) {
    limit_ = options_.min_limit;
    ssthresh_ = std::max(options_.initial_limit, options_.min_limit);
    current_ = absl::ZeroDuration();  // the outage's samples say nothing now
    last_decrease_ = now;
    recovered_at_ = now;
  }

 private:
  static LimiterOptions Sane(LimiterOptions o) {
    o.min_limit = std::max(1, o.min_limit);
    o.max_limit = std::max(o.min_limit, o.max_limit);
    o.floor = std::clamp(o.floor, 0.01, static_cast<double>(o.min_limit));
    o.initial_limit = std::clamp(o.initial_limit, o.min_limit, o.max_limit);
    return o;
  }
  void Decrease(double to, absl::Time now) {
    limit_ = std::max<double>(options_.floor, to);
    // Back to initial_limit at slow-start speed once the latency is back at
    // its baseline: a limit cut down by one slow spell must not need minutes of
    // one-per-round-trip growth (and a queue of waiting clients) to recover.
    ssthresh_ = std::max<double>(limit_, options_.initial_limit);
    last_decrease_ = now;
    ++decreases_;
  }
  // The minimum over two half windows: the baseline forgets samples older
  // than one to two half windows, so a server that became slower for good
  // (moved further away) gets a new baseline instead of a shrinking limit.
  void UpdateBaseline(absl::Duration rtt, absl::Time now) {
    absl::Duration half = options_.baseline_window / 2;
    if (now - window_start_ >= half) {
      min_[0] = now - window_start_ >= 2 * half ? absl::InfiniteDuration() : min_[1];
      min_[1] = absl::InfiniteDuration();
      window_start_ = now;
    }
    min_[1] = std::min(min_[1], rtt);
  }

  const LimiterOptions options_;
  double limit_;
  double ssthresh_;
  absl::Duration current_ = absl::ZeroDuration();
  absl::Duration min_[2] = {absl::InfiniteDuration(), absl::InfiniteDuration()};
  absl::Time window_start_ = absl::InfinitePast();
  absl::Time last_decrease_ = absl::InfinitePast();
  absl::Time recovered_at_ = absl::InfinitePast();
  uint64_t decreases_ = 0;
};

}  // namespace nodedns::upstream

#endif  // NODEDNS_LIB_UPSTREAM_LIMITER_H_
