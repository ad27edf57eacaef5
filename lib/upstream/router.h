#ifndef NODEDNS_LIB_UPSTREAM_ROUTER_H_
#define NODEDNS_LIB_UPSTREAM_ROUTER_H_

// Per-zone forwarding: the longest configured zone that contains the query
// name chooses the upstream set ("cluster.local." to the cluster DNS service,
// "." to the node's resolvers). Not thread-safe; built once per worker.

#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"

namespace nodedns::upstream {

class Upstream;

// A configured zone: where its misses go and how its entries age.
struct Zone {
  std::string name;  // presentation form, for logs
  Upstream* upstream = nullptr;  // not owned
  // RFC 8767: how long past expiry its entries may be served; 0 turns stale
  // serving off for the zone.
  absl::Duration max_stale = absl::Hours(24);
  // While the zone is not healthy, an NXDOMAIN/NODATA does not replace a
  // positive entry younger than max_stale.
  bool last_known_good = false;
  // AAAA queries under the zone are answered NODATA locally.
  bool filter_aaaa = false;
  // The zone name's wire length: a routed name ends in these octets.
  size_t wire_length = 1;
};

class Router {
 public:
  // `zone_wire` is a wire-format name in any case. `zone` is not owned.
  void AddZone(std::string_view zone_wire, const Zone* zone);
  // `qname_wire` is an uncompressed wire name. nullptr when no zone matches
  // (only possible without a root zone).
  const Zone* Route(std::string_view qname_wire) const;
  // True when some zone answers AAAA queries itself (Zone::filter_aaaa):
  // only then does an AAAA query need a route before the cache.
  bool filters_aaaa() const { return filters_aaaa_; }

 private:
  absl::flat_hash_map<std::string, const Zone*> zones_;  // lowercased wire
  bool filters_aaaa_ = false;
};

}  // namespace nodedns::upstream

#endif  // NODEDNS_LIB_UPSTREAM_ROUTER_H_
