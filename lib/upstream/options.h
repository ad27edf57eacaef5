#ifndef NODEDNS_LIB_UPSTREAM_OPTIONS_H_
#define NODEDNS_LIB_UPSTREAM_OPTIONS_H_

// The upstream side's options, with their defaults, in one place: the
// configuration ([upstream] and [serve_stale], lib/config) composes these
// structs and its loader fills them; nothing copies them field by field.
// lib/config/default.toml states the same defaults (a test checks that they
// agree).

#include <cstddef>
#include <string>

#include "absl/time/time.h"

namespace nodedns::upstream {

// Which protocol a zone's queries use ([[zone]] transport).
enum class Protocol {
  kPreferUdp,  // UDP; a truncated answer is asked again over TCP (the default)
  kUdp,        // UDP only: a truncated answer goes to the client as it is (TC=1)
  kTcp,        // TCP only, one connection per server kept open and reused
};

// How a query goes to one server: [upstream] timeout_ms, attempts.
struct TransportOptions {
  absl::Duration timeout = absl::Seconds(1);  // first attempt; doubled for each further one
  int attempts = 2;
  // The longest a query can take, every attempt included.
  absl::Duration longest() const { return timeout * ((1 << attempts) - 1); }

  bool operator==(const TransportOptions&) const = default;
};

struct BreakerOptions {
  int failures_to_open = 3;
  absl::Duration probe_min = absl::Milliseconds(200);
  absl::Duration probe_max = absl::Seconds(1);

  bool operator==(const BreakerOptions&) const = default;
};

struct LimiterOptions {
  int initial_limit = 64;
  int min_limit = 4;  // where an outage's recovery restarts; latency cuts no lower
  // Drops cut down to this, below one query in flight: paced (limiter.h).
  double floor = 0.05;
  int max_limit = 1000;
  double tolerance = 2.0;
  // Jitter on a node-local upstream, and our own event loop's delays under
  // load (the round trip measured includes them), are not the upstream
  // queueing: only a rise of this much on top of tolerance x baseline is.
  absl::Duration rtt_slack = absl::Milliseconds(20);
  double backoff = 0.5;
  absl::Duration drop_interval = absl::Milliseconds(100);
  absl::Duration baseline_window = absl::Seconds(30);

  bool operator==(const LimiterOptions&) const = default;
};

struct PoolOptions {
  std::string zone = ".";  // presentation form; the probe asks its SOA
  BreakerOptions breaker;
  absl::Duration probe_timeout = absl::Milliseconds(500);
  // Safety ceiling on queries per second (token bucket, burst: a tenth of a
  // second's worth); far above what a healthy upstream is asked. 0: none.
  int max_qps = 50000;
  // The adaptive concurrency limit; its max_limit is [upstream] max_inflight.
  LimiterOptions limiter;
  size_t max_queue = 2000;  // queries waiting for room under the limit
  // Client misses over the limit wait one FIFO per client, served round
  // robin, and a full queue pushes out the longest client's newest miss for
  // a client that holds fewer ([upstream] fair_queue). false: one FIFO.
  bool fair_queue = true;
  absl::Duration queue_timeout = absl::Milliseconds(1800);  // RFC 8767's client response timer
  double refresh_share = 0.5;  // refreshes may use at most this share of the limit
  // While degraded, at most this many refreshes in flight: a suspect upstream
  // gets a trickle, not one refresh per stale name, until its breaker decides.
  int degraded_max_refreshes = 8;
  absl::Duration degraded_hold = absl::Seconds(5);
  // 0: adaptive, clamp(adaptive_factor x p99 latency, adaptive_min, adaptive_max).
  absl::Duration client_timeout = absl::ZeroDuration();
  double adaptive_factor = 4;
  absl::Duration adaptive_min = absl::Milliseconds(50);
  absl::Duration adaptive_max = absl::Milliseconds(1800);
  // Until 16 latency samples exist (start-up, new servers): long enough for
  // any upstream a node should depend on.
  absl::Duration initial_client_timeout = absl::Milliseconds(400);

  bool operator==(const PoolOptions&) const = default;
};

}  // namespace nodedns::upstream

#endif  // NODEDNS_LIB_UPSTREAM_OPTIONS_H_
