#ifndef NODEDNS_LIB_SERVER_PINS_H_
#define NODEDNS_LIB_SERVER_PINS_H_

// The configuration's pinned names as the data plane uses them: the cache
// keys of every zone's `pin` list (lib/resolver/pins.h), and the pins' state
// for the exported set (group "pins").
//
// Threading: plain functions; AppendPinMetrics reads the (thread-safe) cache.

#include <vector>

#include "absl/time/time.h"
#include "lib/cache/cache.h"
#include "lib/common/metrics.h"
#include "lib/resolver/pins.h"
#include "lib/server/options.h"

namespace nodedns::server {

// Every zone's pins (A, and AAAA unless the zone filters AAAA). The names
// were validated with the configuration: an error here is a bug.
std::vector<resolver::PinnedKey> PinnedKeysFor(const ServerOptions& options);
std::vector<std::string> CacheKeysOf(const std::vector<resolver::PinnedKey>& pins);

// Group "pins": keys pinned, and how many are fresh, stale (servable) or
// missing at `now` (steady clock).
void AppendPinMetrics(const std::vector<resolver::PinnedKey>& pins, const cache::Cache& cache, absl::Time now,
                      MetricSet* out);

}  // namespace nodedns::server

#endif  // NODEDNS_LIB_SERVER_PINS_H_
