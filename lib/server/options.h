#ifndef NODEDNS_LIB_SERVER_OPTIONS_H_
#define NODEDNS_LIB_SERVER_OPTIONS_H_

// What the data plane (Server, its workers, listeners and the components
// they build) is configured with, and nothing else: no control socket, log,
// interface or snapshot settings. The daemon's config::Config extends it with
// those, and the TOML loader fills both; lib/config/default.toml states the
// same defaults (a config test checks that they agree).

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "lib/cache/cache.h"
#include "lib/common/socket_address.h"
#include "lib/mirror/options.h"
#include "lib/resolver/options.h"
#include "lib/server/tcp_options.h"
#include "lib/upstream/options.h"

namespace nodedns::server {

// One [[zone]]: where queries for names under it go.
struct ZoneOptions {
  std::string name;  // presentation form, always ending in "."
  std::vector<SocketAddress> servers;
  bool use_resolv_conf = false;  // servers come from /etc/resolv.conf
  absl::Duration max_stale = absl::Hours(24);  // 0: no stale serving for the zone
  bool last_known_good = false;
  // UDP with TCP for truncated answers, UDP only, or TCP only (NodeLocal
  // DNSCache forwards the cluster zone with force_tcp).
  upstream::Protocol transport = upstream::Protocol::kPreferUdp;
  // AAAA queries are answered NODATA here, with a synthesised SOA, and never
  // asked upstream (IPv4-only clusters; dnsmasq's filter-AAAA).
  bool filter_aaaa = false;
  // Pinned names under the zone (presentation form, lowercased, ending in
  // "."): resolved at start-up, refreshed before expiry, never evicted
  // (lib/resolver/pins.h).
  std::vector<std::string> pin;
  // Transfer the zone by AXFR and keep its records in the cache
  // (lib/mirror/mirror.h; [mirror] sets how).
  bool mirror = false;

  bool operator==(const ZoneOptions&) const = default;
};

struct ServerOptions {
  // [server]
  std::vector<SocketAddress> listen;
  int workers = 1;  // UDP event-loop threads
  // TCP event-loop threads, apart from the UDP ones (as dnsdist's TCP
  // workers): slow or abusive TCP clients never hold up a UDP answer.
  int tcp_workers = 1;
  // [server] tcp_idle_timeout_ms, max_tcp_connections, max_tcp_pipeline,
  // tcp_frame_timeout_ms, max_tcp_write_queue, tcp_memory_budget.
  TcpOptions tcp;
  // [mirror]: SOA checks and transfers of the zones with mirror = true.
  mirror::MirrorOptions mirror;
  // [cache] size
  cache::CacheOptions cache;
  // The components' own options, with their defaults
  // (lib/upstream/options.h, lib/resolver/options.h):
  //  - [upstream] timeout_ms, attempts;
  upstream::TransportOptions transport;
  //  - [upstream] limits, queue, breakers and probes, [serve_stale]
  //    client_timeout_ms (the zone name is set per zone);
  upstream::PoolOptions upstream;
  //  - [server] max_udp_size, [cache] TTL clamps and prefetch, [serve_stale]
  //    reply_ttl, failure_recheck_ms, servfail_ttl, [upstream] max_pending,
  //    max_waiters.
  resolver::ResolverOptions resolver;
  // [[zone]]
  std::vector<ZoneOptions> zones;
  // [log] query_log_sample: log one query in N; 0: no query log.
  int query_log_sample = 0;
};

}  // namespace nodedns::server

#endif  // NODEDNS_LIB_SERVER_OPTIONS_H_
