#ifndef NODEDNS_LIB_UPSTREAM_CIRCUIT_BREAKER_H_
#define NODEDNS_LIB_UPSTREAM_CIRCUIT_BREAKER_H_

// A circuit breaker for one upstream server. Closed: traffic flows; after
// `failures_to_open` consecutive failures it opens. Open: no client query or
// refresh goes to the server; one probe is allowed per probe interval, which
// starts at probe_min and doubles per failed probe up to probe_max, each
// interval jittered into [interval/2, interval] so that thousands of nodes do
// not probe a recovering control plane in step. A good answer (probe or not)
// closes it.
//
// Pure logic on times given by the caller; not thread-safe.

#include <cstdint>
#include <random>

#include "absl/time/time.h"
#include "lib/upstream/options.h"

namespace nodedns::upstream {


class CircuitBreaker {
 public:
  enum class State : uint8_t { kClosed, kOpen };

  CircuitBreaker(const BreakerOptions& options, uint32_t seed) : options_(options), rng_(seed) {}

  State state() const { return state_; }
  bool allows_traffic() const { return state_ == State::kClosed; }
  absl::Time state_since() const { return state_since_; }
  absl::Time next_probe() const { return next_probe_; }
  int consecutive_failures() const { return consecutive_failures_; }
  uint64_t transitions() const { return transitions_; }

  // Outcome of a query or probe. Return true when the state changed.
  bool OnSuccess(absl::Time now) {
    consecutive_failures_ = 0;
    probe_failures_ = 0;
    if (state_ == State::kClosed) return false;
    Transition(State::kClosed, now);
    return true;
  }
  bool OnFailure(absl::Time now) {
    ++consecutive_failures_;
    if (state_ == State::kOpen) {
      ++probe_failures_;
      ScheduleProbe(now);
      return false;
    }
    if (consecutive_failures_ < options_.failures_to_open) return false;
    Transition(State::kOpen, now);
    ScheduleProbe(now);
    return true;
  }
  // True when an open breaker may send its next probe now.
  bool ProbeDue(absl::Time now) const { return state_ == State::kOpen && now >= next_probe_; }
  // Call when a probe goes out: no other probe until it is answered or the
  // interval after it passes.
  void ProbeSent(absl::Time now) { ScheduleProbe(now); }

  // Reload: the state of the same server's breaker in the previous
  // generation (the options may differ).
  void AdoptState(const CircuitBreaker& other) {
    state_ = other.state_;
    state_since_ = other.state_since_;
    next_probe_ = other.next_probe_;
    consecutive_failures_ = other.consecutive_failures_;
    probe_failures_ = other.probe_failures_;
    transitions_ = other.transitions_;
  }

  // The un-jittered interval after `n` failed probes (for tests and docs).
  absl::Duration Interval(int n) const {
    absl::Duration d = options_.probe_min;
    for (int i = 0; i < n && d < options_.probe_max; ++i) d *= 2;
    return d < options_.probe_max ? d : options_.probe_max;
  }

 private:
  void Transition(State s, absl::Time now) {
    state_ = s;
    state_since_ = now;
    ++transitions_;
  }
  void ScheduleProbe(absl::Time now) {
    absl::Duration full = Interval(probe_failures_);
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    next_probe_ = now + full * jitter(rng_);
  }

  const BreakerOptions options_;
  std::mt19937 rng_;
  State state_ = State::kClosed;
  absl::Time state_since_ = absl::InfinitePast();
  absl::Time next_probe_ = absl::InfinitePast();
  int consecutive_failures_ = 0;
  int probe_failures_ = 0;
  uint64_t transitions_ = 0;
};

}  // namespace nodedns::upstream

#endif  // NODEDNS_LIB_UPSTREAM_CIRCUIT_BREAKER_H_
