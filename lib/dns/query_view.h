#ifndef NODEDNS_LIB_DNS_QUERY_VIEW_H_
#define NODEDNS_LIB_DNS_QUERY_VIEW_H_

// Tier two of the wire code: in-place inspection of a client query, with no
// allocation, for the cache-hit path. Every length and count is checked.

#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"
#include <string_view>

#include "lib/dns/constants.h"

namespace nodedns::dns {

// What the hot path needs to know about a query. Offsets refer to the
// caller's buffer, which must outlive the view.
struct QueryView {
  uint16_t id = 0;
  uint16_t flags = 0;
  uint16_t qname_len = 0;     // wire octets at offset 12, including the root
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  uint16_t question_end = 0;  // offset just past the question
  bool has_edns = false;
  uint8_t edns_version = 0;
  bool dnssec_ok = false;
  uint16_t edns_udp_size = 0;  // as sent by the client

  bool rd() const { return (flags & kFlagRD) != 0; }
  bool cd() const { return (flags & kFlagCD) != 0; }
  bool ad() const { return (flags & kFlagAD) != 0; }
  // The largest UDP answer this client accepts, capped by our own limit.
  uint16_t UdpLimit(uint16_t server_max) const {
    if (!has_edns) return kMinUdpPayload;
    uint16_t s = edns_udp_size < kMinUdpPayload ? kMinUdpPayload : edns_udp_size;
    return s < server_max ? s : server_max;
  }
};

// Outcome of InspectQuery. Each value maps to a counter in the server.
enum class QueryCheck : uint8_t {
  kOk,
  kTooShort,     // not even a header: drop
  kIsResponse,   // QR=1: drop (never answer a response; avoids reflection loops)
  kNotImp,       // opcode other than QUERY, or a zone transfer: NOTIMP
  kFormErr,      // QDCOUNT != 1, bad question, bad OPT: FORMERR
  kBadVers,      // EDNS version above 0: BADVERS
};

QueryCheck InspectQuery(const uint8_t* data, size_t len, QueryView* out);

// A cache key's layout: the lowercased wire qname, then qtype, qclass and a
// flags octet (1: DO, 2: CD). The readers below take any whole key, such as
// the cache's own copies.
inline constexpr size_t kCacheKeySuffix = 5;
inline std::string_view CacheKeyQname(std::string_view key) { return key.substr(0, key.size() - kCacheKeySuffix); }
inline uint16_t CacheKeyQtype(std::string_view key) {
  return Read16(reinterpret_cast<const uint8_t*>(key.data()) + key.size() - kCacheKeySuffix);
}
inline uint16_t CacheKeyQclass(std::string_view key) {
  return Read16(reinterpret_cast<const uint8_t*>(key.data()) + key.size() - 3);
}
inline bool CacheKeyDo(std::string_view key) { return (key.back() & 1) != 0; }
inline bool CacheKeyCd(std::string_view key) { return (key.back() & 2) != 0; }

// A cache key in a fixed buffer, so building it allocates nothing.
struct CacheKey {
  uint8_t data[kMaxNameLength + kCacheKeySuffix];
  uint16_t len = 0;
  std::string_view view() const { return {reinterpret_cast<const char*>(data), len}; }
  // The lowercased qname part.
  std::string_view qname() const { return CacheKeyQname(view()); }
  uint16_t qtype() const { return CacheKeyQtype(view()); }
};

void MakeCacheKey(const uint8_t* qname, size_t qname_len, uint16_t qtype, uint16_t qclass,
                  bool dnssec_ok, bool checking_disabled, CacheKey* out);
inline void MakeCacheKey(const uint8_t* query, const QueryView& q, CacheKey* out) {
  MakeCacheKey(query + kHeaderSize, q.qname_len, q.qtype, q.qclass, q.dnssec_ok, q.cd(), out);
}

}  // namespace nodedns::dns

#endif  // NODEDNS_LIB_DNS_QUERY_VIEW_H_
