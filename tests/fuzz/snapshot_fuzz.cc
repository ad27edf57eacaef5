// libFuzzer target for the snapshot loader (lib/snapshot): any file must be
// rejected or loaded without reading out of bounds, and whatever it loads
// must be served by the cache without trouble.
//
// The first input byte chooses the mode: odd, the rest of the input gets a
// correct CRC-32 appended (so the fuzzer explores the entry checks behind
// the checksum); even, the rest is loaded as it is.

#include <zlib.h>

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "lib/cache/cache.h"
#include "lib/snapshot/snapshot.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string file(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    uLong crc = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(file.data()), static_cast<uInt>(file.size()));
    for (int i = 3; i >= 0; --i) file.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  }
  nodedns::cache::CacheOptions o;
  o.max_entries = 64;
  o.max_bytes = 1 << 20;
  o.shards = 4;
  auto cache = nodedns::cache::Cache::Create(o);
  if (!cache.ok()) return 0;
  // The steady clock 30 h into the boot "boot-id-16-octet", the wall clock in 2023.
  const nodedns::snapshot::Moment at{{absl::UnixEpoch() + absl::Hours(30), absl::FromUnixSeconds(1'700'000'000)},
                                     "boot-id-16-octet"};
  absl::Time now = at.time.steady;
  auto r = nodedns::snapshot::Parse(file, cache->get(), at, [](std::string_view) { return absl::Hours(24); });
  if (!r.ok()) {
    if ((*cache)->entries() != 0) __builtin_trap();  // a damaged file must insert nothing
    return 0;
  }
  // Every loaded entry can be looked up and copied out.
  static uint8_t out[65536 + 64];
  nodedns::cache::HitInfo info;
  for (const auto& e : (*cache)->Summaries()) {
    (*cache)->Lookup(e.key, now, out, sizeof(out), &info);
  }
  // And written again.
  std::string again = nodedns::snapshot::Serialize(**cache, at);
  (void)again;
  return 0;
}
