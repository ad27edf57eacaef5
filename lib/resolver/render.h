#ifndef NODEDNS_LIB_RESOLVER_RENDER_H_
#define NODEDNS_LIB_RESOLVER_RENDER_H_

// How a cache hit becomes a client's answer: a fresh entry, a stale one
// (RFC 8767: TTL reply_ttl, EDE 3 or 19) or a cached SERVFAIL (EDE 13). One
// place, used by the resolver and by the stale-path fuzz target
// (tests/fuzz/stale_fuzz.cc), so that the fuzzer renders exactly what
// clients get. Pure functions: no allocation, no state.

#include <cstddef>
#include <cstdint>

#include "lib/cache/cache.h"
#include "lib/dns/answer.h"
#include "lib/dns/cache_image.h"
#include "lib/dns/query_view.h"

namespace nodedns::resolver {

// The Extended DNS Error a hit carries (RFC 8914): 3 Stale Answer when
// stale (19 Stale NXDOMAIN Answer for a stale NXDOMAIN or NODATA), 13
// Cached Error for a fresh cached SERVFAIL, none (-1) otherwise.
int HitEde(dns::AnswerKind kind, bool stale);

// The size limit and advertised size of an answer to this client: UDP, the
// client's EDNS size (512 without EDNS) capped by max_udp_size; TCP, 65535.
dns::RenderParams RenderParamsFor(const dns::QueryView& q, bool tcp, uint16_t max_udp_size);

struct HitRender {
  bool stale = false;         // every TTL becomes stale_ttl
  uint32_t stale_ttl = 30;    // [serve_stale] reply_ttl
  int ede = -1;               // see HitEde
  bool tcp = false;
  uint16_t max_udp_size = dns::kDefaultEdnsPayload;
};

// Finishes the answer to `query` from `hit`, whose image Cache::Lookup copied
// into out[0, hit.image_len) when hit.copied (else only its header is known
// and the answer is header + question (+ OPT) with TC=1). `out` has `cap`
// octets, at least hit.image_len + dns::kAnswerOverhead when copied. Returns
// the answer's length (0 if cap is too small for a truncated answer).
size_t RenderHit(const cache::HitInfo& hit, const uint8_t* query, const dns::QueryView& q, const HitRender& how,
                 uint8_t* out, size_t cap, bool* truncated);

}  // namespace nodedns::resolver

#endif  // NODEDNS_LIB_RESOLVER_RENDER_H_
