#include "lib/upstream/router.h"

#include <cstring>

#include "lib/dns/constants.h"
#include "lib/dns/name.h"

namespace nodedns::upstream {

void Router::AddZone(std::string_view zone_wire, const Zone* zone) {
  zones_[dns::Lowercase(zone_wire)] = zone;
  filters_aaaa_ = filters_aaaa_ || zone->filter_aaaa;
}

const Zone* Router::Route(std::string_view qname_wire) const {
  // Lowercased on the stack: this runs for every stale answer, so during an
  // outage for nearly every query.
  char buf[dns::kMaxNameLength];
  if (qname_wire.size() > sizeof(buf)) return nullptr;
  std::memcpy(buf, qname_wire.data(), qname_wire.size());
  dns::LowercaseInPlace(reinterpret_cast<uint8_t*>(buf), qname_wire.size());
  std::string_view name(buf, qname_wire.size());
  // Suffixes from the longest (the name itself) to the root: first hit wins.
  size_t i = 0;
  while (i < name.size()) {
    auto it = zones_.find(absl::string_view(name.data() + i, name.size() - i));
    if (it != zones_.end()) return it->second;
    uint8_t len = static_cast<uint8_t>(name[i]);
    if (len == 0) break;
    i += 1 + len;
  }
  return nullptr;
}

}  // namespace nodedns::upstream
