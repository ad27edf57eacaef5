#ifndef NODEDNS_LIB_DNS_ANSWER_H_
#define NODEDNS_LIB_DNS_ANSWER_H_

// Turning a stored answer image into the answer for one client, in place:
// patch the ID and flags, restore the client's question case, age the TTLs,
// append the OPT record, truncate for UDP. No parse, no allocation.

#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"
#include "lib/dns/query_view.h"

namespace nodedns::dns {

struct RenderParams {
  uint32_t age_seconds = 0;      // subtracted from every TTL (floored at 0)
  bool stale = false;            // when set, every TTL becomes stale_ttl
  uint32_t stale_ttl = 30;
  int ede_code = -1;             // EDE info code to attach (EDNS clients only)
  uint16_t size_limit = kMaxMessageSize;  // UDP: QueryView::UdpLimit; TCP: 65535
  uint16_t server_udp_size = kDefaultEdnsPayload;  // advertised in our OPT
};

// Room an answer needs beyond the image: our OPT record with one EDE option.
inline constexpr size_t kAnswerOverhead = 17;

// `out` holds a copy of the stored image in [0, image_len) and has room for
// image_len + kAnswerOverhead octets. `query`/`q` are the client's query.
// Returns the length of the finished answer. When the answer exceeds
// params.size_limit it is cut to header + question (+ OPT) with TC=1.
size_t FinishAnswer(uint8_t* out, size_t image_len, absl::Span<const uint16_t> ttl_offsets,
                    const uint8_t* query, const QueryView& q, const RenderParams& params,
                    bool* truncated);

// For an image that was not copied because it is larger than the client
// accepts: writes header + question (+ OPT) with TC=1 and the image's rcode.
size_t WriteTruncatedAnswer(const uint8_t* image_header, const uint8_t* query, const QueryView& q,
                            const RenderParams& params, uint8_t* out, size_t cap);

}  // namespace nodedns::dns

#endif  // NODEDNS_LIB_DNS_ANSWER_H_
