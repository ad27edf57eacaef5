#include "lib/dns/answer.h"
#include "lib/dns/writers.h"

#include <cstring>

namespace nodedns::dns {
namespace {

uint16_t AnswerFlags(uint16_t image_flags, const QueryView& q) {
  // RA set, RD/CD echoed, AA never (we are a cache), AD only for clients that
  // asked for DNSSEC data (RFC 6840 5.8), rcode from the image.
  uint16_t flags = kFlagQR | kFlagRA | (image_flags & kRcodeMask) | (q.flags & (kFlagRD | kFlagCD));
  if ((image_flags & kFlagAD) && (q.dnssec_ok || q.ad())) flags |= kFlagAD;
  return flags;
}

size_t AppendOpt(uint8_t* out, const QueryView& q, const RenderParams& p) {
  return WriteOpt(out, p.server_udp_size, 0, q.dnssec_ok, p.ede_code);
}

size_t Truncate(uint8_t* out, const QueryView& q, const RenderParams& p) {
  Write16(out + 2, static_cast<uint16_t>(Read16(out + 2) | kFlagTC));
  Write16(out + 4, 1);
  Write16(out + 6, 0);
  Write16(out + 8, 0);
  Write16(out + 10, q.has_edns ? 1 : 0);
  size_t n = q.question_end;
  if (q.has_edns) n += AppendOpt(out + n, q, p);
  return n;
}

}  // namespace

size_t FinishAnswer(uint8_t* out, size_t image_len, absl::Span<const uint16_t> ttl_offsets,
                    const uint8_t* query, const QueryView& q, const RenderParams& p, bool* truncated) {
  *truncated = false;
  std::memcpy(out, query, 2);
  Write16(out + 2, AnswerFlags(Read16(out + 2), q));
  std::memcpy(out + kHeaderSize, query + kHeaderSize, q.qname_len);  // client's letter case
  for (uint16_t off : ttl_offsets) {
    uint32_t ttl = Read32(out + off);
    Write32(out + off, p.stale ? p.stale_ttl : (ttl > p.age_seconds ? ttl - p.age_seconds : 0));
  }
  size_t n = image_len;
  if (q.has_edns) {
    Write16(out + 10, static_cast<uint16_t>(Read16(out + 10) + 1));
    n += AppendOpt(out + n, q, p);
  }
  if (n > p.size_limit) {
    *truncated = true;
    return Truncate(out, q, p);
  }
  return n;
}

size_t WriteTruncatedAnswer(const uint8_t* image_header, const uint8_t* query, const QueryView& q,
                            const RenderParams& p, uint8_t* out, size_t cap) {
  if (cap < size_t{q.question_end} + kAnswerOverhead) return 0;
  std::memcpy(out, query, q.question_end);
  Write16(out + 2, AnswerFlags(Read16(image_header + 2), q));
  return Truncate(out, q, p);
}

}  // namespace nodedns::dns
