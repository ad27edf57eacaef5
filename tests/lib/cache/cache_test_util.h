#ifndef NODEDNS_TESTS_LIB_CACHE_CACHE_TEST_UTIL_H_
#define NODEDNS_TESTS_LIB_CACHE_CACHE_TEST_UTIL_H_

// Keys and images for the cache tests.

#include <string>

#include "lib/dns/cache_image.h"
#include "lib/dns/message.h"
#include "lib/dns/name.h"
#include "lib/dns/query_view.h"

namespace nodedns::cache::testing {

inline std::string Key(const std::string& name, uint16_t type = dns::kTypeA, bool do_bit = false, bool cd = false) {
  std::string wire = *dns::NameFromText(name);
  dns::CacheKey k;
  dns::MakeCacheKey(reinterpret_cast<const uint8_t*>(wire.data()), wire.size(), type, dns::kClassIN, do_bit, cd, &k);
  return std::string(k.view());
}

// A positive answer with `records` A records of TTL `ttl`.
inline dns::CacheImage Image(const std::string& name, uint32_t ttl, int records = 1) {
  dns::Message m;
  m.flags = dns::kFlagQR | dns::kFlagRA;
  m.questions.push_back({*dns::NameFromText(name), dns::kTypeA, dns::kClassIN});
  for (int i = 0; i < records; ++i) {
    m.answers.push_back({*dns::NameFromText(name), dns::kTypeA, dns::kClassIN, ttl, "\x0a\x00\x00\x01"});
  }
  return *dns::BuildCacheImage(m, dns::ImagePolicy{});
}

// NXDOMAIN with an SOA whose TTL and MINIMUM are `ttl`.
inline dns::CacheImage NxImage(const std::string& name, uint32_t ttl) {
  dns::Message m;
  m.flags = dns::kFlagQR | dns::kFlagRA;
  m.set_rcode(dns::kNxDomain);
  m.questions.push_back({*dns::NameFromText(name), dns::kTypeA, dns::kClassIN});
  dns::Record soa{*dns::NameFromText("example"), dns::kTypeSOA, dns::kClassIN, ttl,
                  *dns::NameFromText("ns.example") + *dns::NameFromText("h.example")};
  uint8_t tail[20] = {};
  dns::Write32(tail + 16, ttl);
  soa.rdata.append(reinterpret_cast<char*>(tail), 20);
  m.authority.push_back(soa);
  return *dns::BuildCacheImage(m, dns::ImagePolicy{});
}

}  // namespace nodedns::cache::testing

#endif  // NODEDNS_TESTS_LIB_CACHE_CACHE_TEST_UTIL_H_
