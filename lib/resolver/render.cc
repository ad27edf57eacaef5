#include "lib/resolver/render.h"

#include "lib/dns/constants.h"

namespace nodedns::resolver {

int HitEde(dns::AnswerKind kind, bool stale) {
  if (stale) {
    bool negative = kind == dns::AnswerKind::kNxDomain || kind == dns::AnswerKind::kNoData;
    return negative ? dns::kEdeStaleNxDomain : dns::kEdeStaleAnswer;
  }
  return kind == dns::AnswerKind::kServFail ? dns::kEdeCachedError : -1;
}

dns::RenderParams RenderParamsFor(const dns::QueryView& q, bool tcp, uint16_t max_udp_size) {
  dns::RenderParams params;
  params.size_limit = tcp ? dns::kMaxMessageSize : q.UdpLimit(max_udp_size);
  params.server_udp_size = max_udp_size;
  return params;
}

size_t RenderHit(const cache::HitInfo& hit, const uint8_t* query, const dns::QueryView& q, const HitRender& how,
                 uint8_t* out, size_t cap, bool* truncated) {
  dns::RenderParams params = RenderParamsFor(q, how.tcp, how.max_udp_size);
  params.age_seconds = hit.age_seconds;
  params.stale = how.stale;
  params.stale_ttl = how.stale_ttl;
  params.ede_code = how.ede;
  *truncated = true;
  if (hit.copied) {
    return dns::FinishAnswer(out, hit.image_len, {hit.ttl_offsets, hit.num_ttls}, query, q, params, truncated);
  }
  return dns::WriteTruncatedAnswer(hit.header, query, q, params, out, cap);
}

}  // namespace nodedns::resolver
