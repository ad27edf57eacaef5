#include "lib/dns/query_view.h"

#include <cstring>

#include "lib/dns/name.h"

namespace nodedns::dns {
namespace {

// Skips a possibly compressed name without following pointers.
bool SkipName(const uint8_t* d, size_t len, size_t* pos) {
  size_t p = *pos, total = 0;
  while (true) {
    if (p >= len) return false;
    uint8_t l = d[p];
    if ((l & 0xC0) == 0xC0) {
      if (p + 2 > len) return false;
      *pos = p + 2;
      return true;
    }
    if ((l & 0xC0) != 0) return false;
    if (l == 0) {
      *pos = p + 1;
      return true;
    }
    total += 1 + l;
    if (total + 1 > kMaxNameLength) return false;
    p += 1 + l;
  }
}

}  // namespace

QueryCheck InspectQuery(const uint8_t* d, size_t len, QueryView* q) {
  *q = QueryView{};
  if (len < kHeaderSize) return QueryCheck::kTooShort;
  q->id = Read16(d);
  q->flags = Read16(d + 2);
  if (q->flags & kFlagQR) return QueryCheck::kIsResponse;
  uint16_t qdcount = Read16(d + 4);
  if (OpcodeOf(q->flags) != 0) return QueryCheck::kNotImp;
  if (qdcount != 1) return QueryCheck::kFormErr;
  size_t name_len = ValidateUncompressedName(d + kHeaderSize, len - kHeaderSize);
  if (name_len == 0) return QueryCheck::kFormErr;
  size_t pos = kHeaderSize + name_len;
  if (pos + 4 > len) return QueryCheck::kFormErr;
  q->qname_len = static_cast<uint16_t>(name_len);
  q->qtype = Read16(d + pos);
  q->qclass = Read16(d + pos + 2);
  pos += 4;
  q->question_end = static_cast<uint16_t>(pos);
  // Walk the remaining records to find the OPT record. Queries normally carry
  // only that, but nothing read from the network is trusted.
  uint32_t records = uint32_t{Read16(d + 6)} + Read16(d + 8) + Read16(d + 10);
  uint32_t additional_start = records - Read16(d + 10);
  for (uint32_t i = 0; i < records; ++i) {
    size_t owner = pos;
    if (!SkipName(d, len, &pos) || pos + 10 > len) return QueryCheck::kFormErr;
    uint16_t type = Read16(d + pos);
    uint16_t klass = Read16(d + pos + 2);
    uint32_t ttl = Read32(d + pos + 4);
    uint16_t rdlen = Read16(d + pos + 8);
    pos += 10;
    if (pos + rdlen > len) return QueryCheck::kFormErr;
    if (type == kTypeOPT) {
      if (i < additional_start || q->has_edns || d[owner] != 0) return QueryCheck::kFormErr;
      q->has_edns = true;
      q->edns_udp_size = klass;
      q->edns_version = static_cast<uint8_t>(ttl >> 16);
      q->dnssec_ok = (ttl & kEdnsDoBit) != 0;
      size_t o = pos, end = pos + rdlen;
      while (o < end) {  // options are ignored, but must be well-formed
        if (o + 4 > end) return QueryCheck::kFormErr;
        o += 4 + Read16(d + o + 2);
      }
      if (o != end) return QueryCheck::kFormErr;
    }
    pos += rdlen;
  }
  if (q->has_edns && q->edns_version != 0) return QueryCheck::kBadVers;
  if (q->qtype == kTypeAXFR || q->qtype == kTypeIXFR) return QueryCheck::kNotImp;
  return QueryCheck::kOk;
}

void MakeCacheKey(const uint8_t* qname, size_t qname_len, uint16_t qtype, uint16_t qclass,
                  bool dnssec_ok, bool checking_disabled, CacheKey* out) {
  std::memcpy(out->data, qname, qname_len);
  LowercaseInPlace(out->data, qname_len);
  uint8_t* p = out->data + qname_len;
  Write16(p, qtype);
  Write16(p + 2, qclass);
  p[4] = static_cast<uint8_t>((dnssec_ok ? 1 : 0) | (checking_disabled ? 2 : 0));
  out->len = static_cast<uint16_t>(qname_len + kCacheKeySuffix);
}

}  // namespace nodedns::dns
