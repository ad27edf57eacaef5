// libFuzzer target for the zone mirror's transfer stream
// (lib/mirror/axfr.h, ZoneAssembler): input is the query ID (2 bytes), then
// length-prefixed messages as a server sends them over TCP. Whatever the
// messages, the assembler stops at the first error, never holds more than
// its caps, and a zone it calls done starts and ends with the same SOA.

#include <cstdint>
#include <string>

#include "lib/dns/constants.h"
#include "lib/dns/name.h"
#include "lib/cache/cache.h"
#include "lib/dns/query_view.h"
#include "lib/mirror/axfr.h"
#include "lib/mirror/mirror.h"

namespace {
void Check(bool ok) {
  if (!ok) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static const std::string zone = *nodedns::dns::NameFromText("zone.test");
  nodedns::mirror::TransferLimits limits;
  limits.max_records = 64;
  limits.max_bytes = 16384;
  nodedns::mirror::ZoneAssembler a(zone, static_cast<uint16_t>((data[0] << 8) | data[1]), limits);
  size_t pos = 2;
  while (pos + 2 <= size && !a.done()) {
    size_t n = (static_cast<size_t>(data[pos]) << 8) | data[pos + 1];
    pos += 2;
    if (n > size - pos) n = size - pos;
    if (!a.Feed({data + pos, n}).ok()) return 0;
    pos += n;
  }
  if (!a.done()) return 0;
  nodedns::mirror::Zone z = a.Take();
  Check(z.records.size() <= limits.max_records);
  Check(z.bytes <= limits.max_bytes);
  Check(nodedns::mirror::SoaSerial(z.soa.rdata) == z.serial);
  for (const auto& r : z.records) Check(!(r.type == nodedns::dns::kTypeSOA && nodedns::dns::Lowercase(r.name) == zone));
  // What Install stores of it: only names in the zone, never more entries
  // than records.
  static auto* cache = nodedns::cache::Cache::Create(nodedns::cache::CacheOptions{}).value().release();
  cache->Clear();
  size_t stored = nodedns::mirror::Install(z, {}, cache, absl::UnixEpoch(), absl::Hours(1), absl::InfinitePast());
  Check(stored <= z.records.size());
  cache->ForEach([&](const nodedns::cache::EntryView& e) {
    std::string_view q = nodedns::dns::CacheKeyQname(e.key);
    Check(q.size() >= zone.size() && nodedns::dns::Lowercase(q).compare(q.size() - zone.size(), zone.size(), zone) == 0);
  });
  return 0;
}
