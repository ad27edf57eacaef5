#ifndef NODEDNS_TESTS_LIB_SNAPSHOT_SNAPSHOT_TEST_UTIL_H_
#define NODEDNS_TESTS_LIB_SNAPSHOT_SNAPSHOT_TEST_UTIL_H_

// Cache entries and file reading for the snapshot and keeper tests.

#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "lib/dns/cache_image.h"
#include "lib/dns/message.h"
#include "lib/dns/name.h"
#include "lib/dns/query_view.h"

namespace nodedns::snapshot {

// The cache key of `name` IN A.
inline std::string Key(const std::string& name) {
  std::string wire = *dns::NameFromText(name);
  dns::CacheKey k;
  dns::MakeCacheKey(reinterpret_cast<const uint8_t*>(wire.data()), wire.size(), dns::kTypeA, dns::kClassIN, false,
                    false, &k);
  return std::string(k.view());
}

// An answer with two A records of TTL `ttl`.
inline dns::CacheImage Image(const std::string& name, uint32_t ttl) {
  dns::Message m;
  m.flags = dns::kFlagQR | dns::kFlagRA;
  m.questions.push_back({*dns::NameFromText(name), dns::kTypeA, dns::kClassIN});
  m.answers.push_back({*dns::NameFromText(name), dns::kTypeA, dns::kClassIN, ttl, "\x0a\x00\x00\x01"});
  m.answers.push_back({*dns::NameFromText(name), dns::kTypeA, dns::kClassIN, ttl, "\x0a\x00\x00\x02"});
  return *dns::BuildCacheImage(m, dns::ImagePolicy{});
}

// A stale limit of one day for every name.
inline absl::Duration Day(std::string_view) { return absl::Hours(24); }

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace nodedns::snapshot

#endif  // NODEDNS_TESTS_LIB_SNAPSHOT_SNAPSHOT_TEST_UTIL_H_
