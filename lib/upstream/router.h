#ifndef NODEDNS_LIB_UPSTREAM_ROUTER_H_
#define NODEDNS_LIB_UPSTREAM_ROUTER_H_

// Per-zone forwarding: the longest configured zone that contains the query
// name chooses the upstream set ("cluster.local." to the cluster DNS service,
// "." to the node's resolvers). Not thread-safe; built once per worker.

#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"

namespace nodedns::upstream {

class Upstream;

class Router {
 public:
  // `zone_wire` is a wire-format name in any case. `set` is not owned.
  void AddZone(std::string_view zone_wire, Upstream* set);
  // `qname_wire` is an uncompressed wire name. nullptr when no zone matches
  // (only possible without a root zone).
  Upstream* Route(std::string_view qname_wire) const;

 private:
  absl::flat_hash_map<std::string, Upstream*> zones_;  // lowercased wire
};

}  // namespace nodedns::upstream

#endif  // NODEDNS_LIB_UPSTREAM_ROUTER_H_
