#include "lib/server/pins.h"

#include <spdlog/spdlog.h>

namespace nodedns::server {

std::vector<resolver::PinnedKey> PinnedKeysFor(const ServerOptions& options) {
  std::vector<resolver::PinnedKey> out;
  for (const ZoneOptions& z : options.zones) {
    auto keys = resolver::PinKeys(z.pin, z.filter_aaaa);
    if (!keys.ok()) {
      spdlog::error("zone {}: pinned names: {}", z.name, std::string(keys.status().message()));
      continue;
    }
    out.insert(out.end(), keys->begin(), keys->end());
  }
  return out;
}

std::vector<std::string> CacheKeysOf(const std::vector<resolver::PinnedKey>& pins) {
  std::vector<std::string> keys;
  for (const resolver::PinnedKey& p : pins) keys.push_back(p.key);
  return keys;
}

void AppendPinMetrics(const std::vector<resolver::PinnedKey>& pins, const cache::Cache& cache, absl::Time now,
                      MetricSet* out) {
  size_t fresh = 0, stale = 0, missing = 0;
  for (const resolver::PinnedKey& p : pins) {
    absl::Time inserted, expires, stale_until;
    if (!cache.Peek(p.key, &inserted, &expires, &stale_until) || (now >= stale_until && now >= expires)) {
      ++missing;
    } else if (now < expires) {
      ++fresh;
    } else {
      ++stale;
    }
  }
  out->Gauge("pins", "keys", "Pinned cache keys (A and AAAA of each [[zone]] pin name)", static_cast<double>(pins.size()));
  out->Gauge("pins", "fresh", "Pinned keys with a fresh answer in the cache", static_cast<double>(fresh));
  out->Gauge("pins", "stale", "Pinned keys answered stale (expired, within their stale window)",
             static_cast<double>(stale));
  out->Gauge("pins", "missing", "Pinned keys with no servable answer (not resolved yet, or past max_stale)",
             static_cast<double>(missing));
}

}  // namespace nodedns::server
