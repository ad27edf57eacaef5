#ifndef NODEDNS_LIB_DNS_CACHE_IMAGE_H_
#define NODEDNS_LIB_DNS_CACHE_IMAGE_H_

// Turns a validated upstream answer into the normalized wire image the cache
// stores: ID 0, our flags, the question lowercased at offset 12, every record
// re-encoded with compression, no OPT record, and the offset of every TTL.

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/dns/message.h"

namespace nodedns::dns {

enum class AnswerKind : uint8_t {
  kPositive,   // NOERROR with answers
  kNxDomain,   // NXDOMAIN
  kNoData,     // NOERROR, no answers
  kServFail,   // SERVFAIL (cached briefly by the resilience layer, RFC 2308 7)
  kOther,      // REFUSED, NOTIMP, ...: never cached
};

struct TtlPolicy {
  uint32_t min_ttl = 0;
  uint32_t max_ttl = 86400;
  uint32_t negative_max_ttl = 3600;

  bool operator==(const TtlPolicy&) const = default;
};

struct CacheImage {
  std::vector<uint8_t> wire;
  std::vector<uint16_t> ttl_offsets;
  uint32_t ttl = 0;     // how long the entry is fresh
  AnswerKind kind = AnswerKind::kOther;
  // False when the answer may be relayed but not stored: TTL 0, a negative
  // answer without an SOA (RFC 2308 5), a truncated answer, an rcode other
  // than NOERROR/NXDOMAIN.
  bool cacheable = false;
};

// Maximum number of records an image may hold (bounds the TTL offset list a
// cache hit walks).
inline constexpr size_t kMaxImageRecords = 512;

// `response` must already be known to answer `question` (the caller checks).
absl::StatusOr<CacheImage> BuildCacheImage(const Message& response, const TtlPolicy& policy);

}  // namespace nodedns::dns

#endif  // NODEDNS_LIB_DNS_CACHE_IMAGE_H_
