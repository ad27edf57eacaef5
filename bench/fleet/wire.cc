#include "bench/fleet/wire.h"

#include <cstring>

namespace nodedns::fleet {
namespace {

constexpr size_t kHeader = 12;
constexpr uint16_t kTypeOpt = 41;
constexpr uint16_t kClassIn = 1;

uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void Put32(uint8_t* p, uint32_t v) {
  Put16(p, static_cast<uint16_t>(v >> 16));
  Put16(p + 2, static_cast<uint16_t>(v));
}
char Lower(uint8_t c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); }

// Reads an uncompressed name at *off into `name` (lowercased, dotted).
bool ReadName(const uint8_t* p, size_t n, size_t* off, std::string* name) {
  name->clear();
  size_t i = *off;
  while (true) {
    if (i >= n) return false;
    uint8_t len = p[i++];
    if (len == 0) break;
    if (len > 63 || i + len > n || name->size() + len + 1 > 255) return false;
    if (!name->empty()) name->push_back('.');
    for (size_t k = 0; k < len; ++k) name->push_back(Lower(p[i + k]));
    i += len;
  }
  *off = i;
  return true;
}

// Skips a possibly compressed name (answer sections use pointers).
bool SkipName(const uint8_t* p, size_t n, size_t* off) {
  size_t i = *off;
  while (true) {
    if (i >= n) return false;
    uint8_t len = p[i];
    if ((len & 0xc0) == 0xc0) {
      if (i + 2 > n) return false;
      *off = i + 2;
      return true;
    }
    if (len > 63) return false;
    i += 1 + len;
    if (len == 0) {
      *off = i;
      return true;
    }
  }
}

// Writes `name` (dotted, no trailing dot, "" for the root) as labels.
size_t PutName(std::string_view name, uint8_t* out, size_t cap) {
  size_t o = 0;
  while (!name.empty()) {
    size_t dot = name.find('.');
    std::string_view label = name.substr(0, dot);
    if (label.empty() || label.size() > 63 || o + 1 + label.size() + 1 > cap) return 0;
    out[o++] = static_cast<uint8_t>(label.size());
    std::memcpy(out + o, label.data(), label.size());
    o += label.size();
    name = dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
  }
  if (o + 1 > cap) return 0;
  out[o++] = 0;
  return o;
}

// The zone's SOA record (TTL and MINIMUM both `ttl`, as CoreDNS's
// kubernetes plugin does), at out. Returns its length, 0 if it does not fit.
size_t PutSoa(std::string_view zone, uint32_t ttl, uint8_t* out, size_t cap) {
  size_t o = PutName(zone, out, cap);
  if (o == 0 || o + 10 > cap) return 0;
  Put16(out + o, kTypeSoa);
  Put16(out + o + 2, kClassIn);
  Put32(out + o + 4, ttl);
  size_t rdlen_at = o + 8;
  o += 10;
  size_t start = o;
  std::string mname = zone.empty() ? "ns.fleet" : "ns.dns." + std::string(zone);
  std::string rname = zone.empty() ? "hostmaster.fleet" : "hostmaster." + std::string(zone);
  for (const std::string& nm : {mname, rname}) {
    size_t w = PutName(nm, out + o, cap - o);
    if (w == 0) return 0;
    o += w;
  }
  if (o + 20 > cap) return 0;
  const uint32_t fields[5] = {1, 7200, 1800, 86400, ttl};  // serial, refresh, retry, expire, minimum
  for (uint32_t f : fields) {
    Put32(out + o, f);
    o += 4;
  }
  Put16(out + rdlen_at, static_cast<uint16_t>(o - start));
  return o;
}

}  // namespace

size_t WriteQuery(uint16_t id, std::string_view name, uint16_t qtype, uint8_t* out, size_t cap) {
  if (cap < kHeader + 4) return 0;
  std::memset(out, 0, kHeader);
  Put16(out, id);
  out[2] = 0x01;  // RD
  Put16(out + 4, 1);
  size_t n = PutName(name, out + kHeader, cap - kHeader - 4);
  if (n == 0) return 0;
  size_t o = kHeader + n;
  Put16(out + o, qtype);
  Put16(out + o + 2, kClassIn);
  return o + 4;
}

bool ParseAnswer(const uint8_t* p, size_t n, ParsedAnswer* out) {
  if (n < kHeader || !(p[2] & 0x80) || Get16(p + 4) != 1) return false;
  out->id = Get16(p);
  out->rcode = p[3] & 0x0f;
  size_t off = kHeader;
  if (!ReadName(p, n, &off, &out->qname) || off + 4 > n) return false;
  off += 4;
  out->has_a = false;
  uint16_t ancount = Get16(p + 6);
  for (uint16_t i = 0; i < ancount; ++i) {
    if (!SkipName(p, n, &off) || off + 10 > n) return false;
    uint16_t type = Get16(p + off);
    uint16_t rdlen = Get16(p + off + 8);
    off += 10;
    if (off + rdlen > n) return false;
    if (type == kTypeA && rdlen == 4 && !out->has_a) {
      out->has_a = true;
      out->a = static_cast<uint32_t>(p[off]) << 24 | static_cast<uint32_t>(p[off + 1]) << 16 |
               static_cast<uint32_t>(p[off + 2]) << 8 | p[off + 3];
    }
    off += rdlen;
  }
  return true;
}

bool ParseQuery(const uint8_t* p, size_t n, ParsedQuery* out) {
  if (n < kHeader || (p[2] & 0x80) || Get16(p + 4) != 1) return false;
  out->id = Get16(p);
  size_t off = kHeader;
  if (!ReadName(p, n, &off, &out->qname) || off + 4 > n) return false;
  out->qtype = Get16(p + off);
  out->question_end = off + 4;
  out->has_opt = false;
  // An OPT record right after the question (what resolvers send): echo one.
  size_t o = out->question_end;
  if (Get16(p + 10) >= 1 && o + 11 <= n && p[o] == 0 && Get16(p + o + 1) == kTypeOpt) out->has_opt = true;
  return true;
}

size_t WriteAnswer(const uint8_t* query, const ParsedQuery& q, const AnswerSpec& spec, uint8_t* out, size_t cap) {
  if (q.question_end > cap) return 0;
  std::memcpy(out, query, q.question_end);
  // QR, the query's opcode and RD; AA (the cluster DNS is authoritative for
  // its zone; a forwarder's AA does not matter to a cache); RA.
  out[2] = static_cast<uint8_t>(0x80 | (query[2] & 0x79) | 0x04);
  out[3] = static_cast<uint8_t>(0x80 | (spec.rcode & 0x0f));
  Put16(out + 6, 0);
  Put16(out + 8, 0);
  Put16(out + 10, 0);
  size_t o = q.question_end;
  if (spec.a != nullptr) {
    if (o + 16 > cap) return 0;
    Put16(out + o, 0xc00c);  // the question's name
    Put16(out + o + 2, kTypeA);
    Put16(out + o + 4, kClassIn);
    Put32(out + o + 6, spec.ttl);
    Put16(out + o + 10, 4);
    Put32(out + o + 12, *spec.a);
    o += 16;
    Put16(out + 6, 1);
  } else if (spec.rcode == kRcodeNoError || spec.rcode == kRcodeNxDomain) {
    size_t w = PutSoa(spec.zone, spec.ttl, out + o, cap - o);
    if (w == 0) return 0;
    o += w;
    Put16(out + (spec.soa_answer ? 6 : 8), 1);
  }
  if (q.has_opt) {
    if (o + 11 > cap) return 0;
    out[o] = 0;
    Put16(out + o + 1, kTypeOpt);
    Put16(out + o + 3, 1232);
    Put32(out + o + 5, 0);
    Put16(out + o + 9, 0);
    o += 11;
    Put16(out + 10, 1);
  }
  return o;
}

}  // namespace nodedns::fleet
