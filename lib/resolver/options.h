#ifndef NODEDNS_LIB_RESOLVER_OPTIONS_H_
#define NODEDNS_LIB_RESOLVER_OPTIONS_H_

// The resolver's options, with their defaults, in one place: the
// configuration composes this struct and its loader fills it ([server]
// max_udp_size, [cache] TTL clamps and prefetch, [serve_stale], [upstream]
// max_pending and max_waiters, [fair_share], [shed]). lib/config/default.toml states the same
// defaults (a test checks that they agree).

#include <cstddef>
#include <cstdint>

#include "absl/time/time.h"
#include "lib/dns/cache_image.h"
#include "lib/dns/constants.h"

namespace nodedns::resolver {

// [fair_share]: who a client is, and its share of the worker's upstream
// work (client_share.h).
struct FairShareOptions {
  int ipv4_prefix = 32;  // a client is its address under this prefix
  int ipv6_prefix = 64;  // one host usually holds a whole /64
  size_t max_clients = 4096;  // tracked per worker; beyond, one client for all
  absl::Duration window = absl::Seconds(1);  // sliding window of recent misses (two buckets)
  // Never shed a client asking fewer misses a second than this, whatever its
  // share: a pod starting up is not a flood.
  int min_client_misses = 500;
  // Pending pressure: when the worker's open upstream queries reach this
  // share of max_pending, a client holding at least its share of them (and
  // at least min_client_pending) starts no new one (SERVFAIL).
  double pending_pressure = 0.5;
  size_t min_client_pending = 64;

  bool operator==(const FairShareOptions&) const = default;
};

// [shed]: load shedding when the worker is overloaded, before any upstream
// work and never for a cache hit. Overloaded: a UDP socket's receive queue
// held at least backlog_percent of its buffer at a read (within the last
// `hold`), or the pending pressure of FairShareOptions. Then a miss of a
// heavy client (ClientShares::NoteMiss) is dropped unanswered (UDP; or
// REFUSED) or answered REFUSED (TCP).
struct ShedOptions {
  bool enabled = true;
  double backlog = 0.25;
  absl::Duration hold = absl::Seconds(1);
  bool refuse = false;  // UDP: REFUSED instead of dropping ([shed] answer)

  bool operator==(const ShedOptions&) const = default;
};

struct ResolverOptions {
  uint16_t max_udp_size = dns::kDefaultEdnsPayload;
  dns::ImagePolicy image;  // TTL clamps, minimal responses
  size_t max_pending = 10000;  // distinct upstream queries in flight
  size_t max_waiters = 1000;   // clients waiting on one upstream query
  uint32_t stale_reply_ttl = 30;                          // RFC 8767 section 4
  absl::Duration failure_recheck = absl::Seconds(30);     // RFC 8767 section 5
  // Newer evidence wins: a usable answer from the zone ends a name's recheck
  // window, but not before this (a name broken on its own, behind a zone that
  // answers everything else, is asked at most once per this).
  absl::Duration failure_recheck_min = absl::Seconds(1);
  absl::Duration servfail_ttl = absl::Seconds(5);         // RFC 2308 section 7
  bool prefetch = true;
  double prefetch_threshold = 0.1;  // refresh when asked for in the last 10 % of the TTL
  // Pinned names are refreshed before expiry, but no more often than this
  // ([cache] pin_refresh_min_s; pins.h).
  absl::Duration pin_refresh_min = absl::Seconds(30);
  FairShareOptions fair_share;
  ShedOptions shed;

  bool operator==(const ResolverOptions&) const = default;
};

}  // namespace nodedns::resolver

#endif  // NODEDNS_LIB_RESOLVER_OPTIONS_H_
