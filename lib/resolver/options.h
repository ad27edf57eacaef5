#ifndef NODEDNS_LIB_RESOLVER_OPTIONS_H_
#define NODEDNS_LIB_RESOLVER_OPTIONS_H_

// The resolver's options, with their defaults, in one place: the
// configuration composes this struct and its loader fills it ([server]
// max_udp_size, [cache] TTL clamps and prefetch, [serve_stale], [upstream]
// max_pending and max_waiters). lib/config/default.toml states the same
// defaults (a test checks that they agree).

#include <cstddef>
#include <cstdint>

#include "absl/time/time.h"
#include "lib/dns/cache_image.h"
#include "lib/dns/constants.h"

namespace nodedns::resolver {

struct ResolverOptions {
  uint16_t max_udp_size = dns::kDefaultEdnsPayload;
  dns::TtlPolicy ttl;
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

  bool operator==(const ResolverOptions&) const = default;
};

}  // namespace nodedns::resolver

#endif  // NODEDNS_LIB_RESOLVER_OPTIONS_H_
