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

// Writes an OPT record (RFC 6891) at `out`: our UDP size, the upper rcode
// bits, DO, and one EDE option when ede_code >= 0. Needs 17 octets; returns
// the length written (11 or 17).
size_t WriteOpt(uint8_t* out, uint16_t udp_size, uint8_t extended_rcode, bool dnssec_ok, int ede_code);

// Room WriteQuery needs.
inline constexpr size_t kMaxQuerySize = kHeaderSize + kMaxNameLength + 4 + 11;

// Writes the query nodedns sends upstream: ID 0 (the transport sets it), RD
// (and CD if asked), one question, and an OPT record with our buffer size and
// the DO bit. `qname` is uncompressed wire format. `out` has kMaxQuerySize
// octets; returns the length.
size_t WriteQuery(std::string_view qname, uint16_t qtype, uint16_t qclass, bool checking_disabled, bool dnssec_ok,
                  uint8_t* out);

// True if `answer` is a response (QR=1, QUERY) to `query` (one we wrote with
// WriteQuery): one question, the same name in any letter case, type and
// class. It does not look past the question; the resolver's full parse does.
bool IsAnswerTo(absl::Span<const uint8_t> query, absl::Span<const uint8_t> answer);

// Writes an answer with no records and the given rcode for `query` into out:
// the client's ID, opcode, RD and CD, RA set, the question when `q` is known
// to be well-formed (else none), and an OPT record when the query had one
// (with the extended rcode bits and an EDE option when ede_code >= 0).
// Returns the length written, 0 if `cap` is too small.
size_t WriteErrorAnswer(const uint8_t* query, size_t query_len, const QueryView* q, uint16_t rcode,
                        int ede_code, uint16_t server_udp_size, uint8_t* out, size_t cap);

}  // namespace nodedns::dns

#endif  // NODEDNS_LIB_DNS_QUERY_VIEW_H_
