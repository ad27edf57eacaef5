#include "lib/dns/writers.h"

#include <cstring>

#include "lib/dns/name.h"

namespace nodedns::dns {

size_t WriteOpt(uint8_t* out, uint16_t udp_size, uint8_t ext_rcode, bool dnssec_ok, int ede_code) {
  out[0] = 0;
  Write16(out + 1, kTypeOPT);
  Write16(out + 3, udp_size);
  Write32(out + 5, (uint32_t{ext_rcode} << 24) | (dnssec_ok ? kEdnsDoBit : 0));
  if (ede_code < 0) {
    Write16(out + 9, 0);
    return 11;
  }
  Write16(out + 9, 6);
  Write16(out + 11, kOptionExtendedError);
  Write16(out + 13, 2);
  Write16(out + 15, static_cast<uint16_t>(ede_code));
  return 17;
}

bool IsAnswerTo(absl::Span<const uint8_t> query, absl::Span<const uint8_t> answer) {
  if (query.size() < kHeaderSize || answer.size() < kHeaderSize) return false;
  uint16_t flags = Read16(answer.data() + 2);
  if (!(flags & kFlagQR) || OpcodeOf(flags) != 0 || Read16(answer.data() + 4) != 1) return false;
  size_t name_len = ValidateUncompressedName(query.data() + kHeaderSize, query.size() - kHeaderSize);
  size_t question = name_len + 4;
  if (name_len == 0 || kHeaderSize + question > query.size() || kHeaderSize + question > answer.size()) return false;
  const uint8_t* q = query.data() + kHeaderSize;
  const uint8_t* a = answer.data() + kHeaderSize;
  // Label lengths equal and letters equal in any case (a length octet is at
  // most 63, below 'A', so lowering leaves it alone): the question of a
  // response is never compressed (nothing precedes it to point at).
  auto lower = [](uint8_t c) { return c >= 'A' && c <= 'Z' ? static_cast<uint8_t>(c + 32) : c; };
  for (size_t i = 0; i < question; ++i) {
    uint8_t x = q[i], y = a[i];
    if (x == y) continue;
    if (i >= name_len || lower(x) != lower(y)) return false;
  }
  return true;
}

size_t WriteQuery(std::string_view qname, uint16_t qtype, uint16_t qclass, bool checking_disabled, bool dnssec_ok,
                  uint8_t* out) {
  std::memset(out, 0, kHeaderSize);
  Write16(out + 2, static_cast<uint16_t>(kFlagRD | (checking_disabled ? kFlagCD : 0)));
  Write16(out + 4, 1);
  Write16(out + 10, 1);
  size_t n = kHeaderSize;
  std::memcpy(out + n, qname.data(), qname.size());
  n += qname.size();
  Write16(out + n, qtype);
  Write16(out + n + 2, qclass);
  n += 4;
  return n + WriteOpt(out + n, kDefaultEdnsPayload, 0, dnssec_ok, -1);
}

size_t WriteErrorAnswer(const uint8_t* query, size_t query_len, const QueryView* q, uint16_t rcode,
                        int ede_code, uint16_t server_udp_size, uint8_t* out, size_t cap) {
  size_t question_len = q != nullptr ? q->question_end - kHeaderSize : 0;
  size_t need = kHeaderSize + question_len + 17;
  if (cap < need || query_len < 4) return 0;
  uint16_t qflags = Read16(query + 2);
  std::memcpy(out, query, 2);  // ID
  // RD is copied for every opcode (RFC 1035 4.1.1); RA and CD are defined
  // for QUERY only (RFC 1035, RFC 4035 3.2.2; ISC's genreport checks it).
  bool query_opcode = (qflags & kOpcodeMask) == 0;
  uint16_t flags = static_cast<uint16_t>(kFlagQR | (qflags & (kOpcodeMask | kFlagRD)) | (rcode & kRcodeMask));
  if (query_opcode) flags |= static_cast<uint16_t>(kFlagRA | (qflags & kFlagCD));
  Write16(out + 2, flags);
  Write16(out + 4, q != nullptr ? 1 : 0);
  Write16(out + 6, 0);
  Write16(out + 8, 0);
  bool edns = q != nullptr && q->has_edns;
  Write16(out + 10, edns ? 1 : 0);
  size_t n = kHeaderSize;
  if (q != nullptr) {
    std::memcpy(out + n, query + kHeaderSize, question_len);
    n += question_len;
  }
  if (edns) {
    n += WriteOpt(out + n, server_udp_size, static_cast<uint8_t>(rcode >> 4), q->dnssec_ok, ede_code);
  }
  return n;
}

size_t WriteNoDataAnswer(const uint8_t* query, const QueryView& q, size_t zone_length, uint32_t ttl,
                         uint16_t server_udp_size, uint8_t* out, size_t cap) {
  // MNAME and RNAME under the special-use name "invalid." (RFC 6761 6.4):
  // the SOA is ours, not the zone's.
  static constexpr char kMname[] = "\7nodedns\7invalid";            // + root
  static constexpr char kRname[] = "\12hostmaster\7nodedns\7invalid";  // + root
  constexpr size_t kMnameLen = sizeof(kMname), kRnameLen = sizeof(kRname);  // with the root octet
  constexpr size_t kRdataLen = kMnameLen + kRnameLen + 20;
  constexpr size_t kSoaLen = 2 + 10 + kRdataLen;
  if (zone_length == 0 || zone_length > q.qname_len) return 0;
  size_t n = WriteErrorAnswer(query, q.question_end, &q, kNoError, -1, server_udp_size, out, cap);
  if (n == 0 || cap < n + kSoaLen) return 0;
  // The SOA goes before the OPT record, if any: move the OPT up.
  size_t opt_at = q.question_end;
  size_t opt_len = n - opt_at;
  std::memmove(out + opt_at + kSoaLen, out + opt_at, opt_len);
  uint8_t* p = out + opt_at;
  // Owner: the zone, a pointer to the question name's last zone_length octets.
  size_t owner = kHeaderSize + q.qname_len - zone_length;
  Write16(p, static_cast<uint16_t>(0xC000 | owner));
  Write16(p + 2, kTypeSOA);
  Write16(p + 4, kClassIN);
  Write32(p + 6, ttl);
  Write16(p + 10, static_cast<uint16_t>(kRdataLen));
  p += 12;
  std::memcpy(p, kMname, kMnameLen);
  p += kMnameLen;
  std::memcpy(p, kRname, kRnameLen);
  p += kRnameLen;
  Write32(p, 1);          // serial
  Write32(p + 4, 3600);   // refresh
  Write32(p + 8, 600);    // retry
  Write32(p + 12, 86400); // expire
  Write32(p + 16, ttl);   // minimum: the negative TTL
  Write16(out + 8, 1);    // NSCOUNT
  return n + kSoaLen;
}

}  // namespace nodedns::dns
