#include "lib/dns/message.h"

#include <cstring>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "lib/dns/name.h"

namespace nodedns::dns {
namespace {

absl::Status Malformed(const char* what) { return absl::InvalidArgumentError(what); }

// How names appear inside RDATA, for the types whose RDATA contains names.
enum class RdataShape {
  kOpaque,
  kName,       // NS, CNAME, PTR, MB, MD, MF, MG, MR, DNAME
  kTwoNames,   // MINFO
  kSoa,        // two names + 20 octets
  kPrefName,   // MX: 16 bits + name
  kSrv,        // 3 x 16 bits + name
};

RdataShape ShapeOf(uint16_t type) {
  switch (type) {
    case kTypeNS: case kTypeCNAME: case kTypePTR: case kTypeMB: case kTypeMD: case kTypeMF:
    case kTypeMG: case kTypeMR: case kTypeDNAME:
      return RdataShape::kName;
    case kTypeMINFO: return RdataShape::kTwoNames;
    case kTypeSOA: return RdataShape::kSoa;
    case kTypeMX: return RdataShape::kPrefName;
    case kTypeSRV: return RdataShape::kSrv;
    default: return RdataShape::kOpaque;
  }
}

// RFC 3597 section 4: only the well-known RFC 1035 types may be compressed
// on output. DNAME and SRV are decompressed on input but written plainly.
bool MayCompressRdata(uint16_t type) { return type != kTypeDNAME && type != kTypeSRV; }

absl::Status ReadRdata(absl::Span<const uint8_t> wire, size_t start, uint16_t rdlen, uint16_t type,
                       std::string* out) {
  size_t end = start + rdlen;
  RdataShape shape = ShapeOf(type);
  if (shape == RdataShape::kOpaque) {
    out->assign(reinterpret_cast<const char*>(wire.data() + start), rdlen);
    return absl::OkStatus();
  }
  size_t pos = start;
  auto fixed = [&](size_t n) -> absl::Status {
    if (pos + n > end) return Malformed("RDATA shorter than its type requires");
    out->append(reinterpret_cast<const char*>(wire.data() + pos), n);
    pos += n;
    return absl::OkStatus();
  };
  auto name = [&]() -> absl::Status {
    // The name must lie inside the RDATA; pointers may point anywhere before.
    auto s = ReadName(wire.subspan(0, end), &pos, out);
    return s;
  };
  absl::Status s;
  switch (shape) {
    case RdataShape::kName: s = name(); break;
    case RdataShape::kTwoNames: s = name(); if (s.ok()) s = name(); break;
    case RdataShape::kSoa: s = name(); if (s.ok()) s = name(); if (s.ok()) s = fixed(20); break;
    case RdataShape::kPrefName: s = fixed(2); if (s.ok()) s = name(); break;
    case RdataShape::kSrv: s = fixed(6); if (s.ok()) s = name(); break;
    case RdataShape::kOpaque: break;
  }
  if (!s.ok()) return s;
  if (pos != end) return Malformed("RDATA longer than its content");
  return absl::OkStatus();
}

class Writer {
 public:
  explicit Writer(const WriteOptions& options) : options_(options) { buf_.reserve(512); }

  bool Put8(uint8_t v) {
    if (buf_.size() + 1 > options_.max_size) return Overflow();
    buf_.push_back(v);
    return true;
  }
  bool Put16(uint16_t v) { return Put8(static_cast<uint8_t>(v >> 8)) && Put8(static_cast<uint8_t>(v)); }
  bool Put32(uint32_t v) { return Put16(static_cast<uint16_t>(v >> 16)) && Put16(static_cast<uint16_t>(v)); }
  bool PutBytes(std::string_view b) {
    if (buf_.size() + b.size() > options_.max_size) return Overflow();
    buf_.insert(buf_.end(), b.begin(), b.end());
    return true;
  }

  bool PutName(std::string_view name, bool compress) {
    if (ValidateUncompressedName(reinterpret_cast<const uint8_t*>(name.data()), name.size()) !=
        name.size()) {
      status_ = Malformed("invalid name");
      return false;
    }
    size_t i = 0;
    while (name[i] != 0) {
      std::string_view suffix = name.substr(i);
      if (compress && options_.compress) {
        auto it = offsets_.find(Lowercase(suffix));
        if (it != offsets_.end()) return Put16(static_cast<uint16_t>(0xC000 | it->second));
      }
      if (options_.compress && buf_.size() < 0x3FFF) offsets_.emplace(Lowercase(suffix), buf_.size());
      uint8_t len = static_cast<uint8_t>(name[i]);
      if (!PutBytes(name.substr(i, 1 + len))) return false;
      i += 1 + len;
    }
    return Put8(0);
  }

  // Writes RDATA, re-compressing embedded names where RFC 3597 allows it.
  bool PutRdata(const Record& rr) {
    size_t len_pos = buf_.size();
    if (!Put16(0)) return false;
    RdataShape shape = ShapeOf(rr.type);
    bool ok = true;
    if (shape == RdataShape::kOpaque) {
      ok = PutBytes(rr.rdata);
    } else {
      const uint8_t* d = reinterpret_cast<const uint8_t*>(rr.rdata.data());
      size_t n = rr.rdata.size(), pos = 0;
      bool compress = MayCompressRdata(rr.type);
      auto name = [&]() {
        size_t l = ValidateUncompressedName(d + pos, n - pos);
        if (l == 0) { status_ = Malformed("invalid name in RDATA"); return false; }
        bool r = PutName(rr.rdata.substr(pos, l), compress);
        pos += l;
        return r;
      };
      auto fixed = [&](size_t k) {
        if (pos + k > n) { status_ = Malformed("short RDATA"); return false; }
        bool r = PutBytes(rr.rdata.substr(pos, k));
        pos += k;
        return r;
      };
      switch (shape) {
        case RdataShape::kName: ok = name(); break;
        case RdataShape::kTwoNames: ok = name() && name(); break;
        case RdataShape::kSoa: ok = name() && name() && fixed(20); break;
        case RdataShape::kPrefName: ok = fixed(2) && name(); break;
        case RdataShape::kSrv: ok = fixed(6) && name(); break;
        case RdataShape::kOpaque: break;
      }
      if (ok && pos != n) { status_ = Malformed("trailing RDATA"); ok = false; }
    }
    if (!ok) return false;
    size_t rdlen = buf_.size() - len_pos - 2;
    if (rdlen > 0xFFFF) { status_ = Malformed("RDATA too long"); return false; }
    Write16(&buf_[len_pos], static_cast<uint16_t>(rdlen));
    return true;
  }

  bool PutRecord(const Record& rr) {
    if (!PutName(rr.name, true) || !Put16(rr.type) || !Put16(rr.klass)) return false;
    if (options_.ttl_offsets != nullptr) options_.ttl_offsets->push_back(static_cast<uint16_t>(buf_.size()));
    return Put32(rr.ttl) && PutRdata(rr);
  }

  std::vector<uint8_t>& buf() { return buf_; }
  absl::Status status() const { return status_; }

 private:
  bool Overflow() {
    if (status_.ok()) status_ = absl::ResourceExhaustedError("message exceeds size limit");
    return false;
  }

  const WriteOptions& options_;
  std::vector<uint8_t> buf_;
  absl::flat_hash_map<std::string, size_t> offsets_;
  absl::Status status_;
};

}  // namespace

void Message::set_rcode(uint16_t rcode) {
  flags = static_cast<uint16_t>((flags & ~kRcodeMask) | (rcode & kRcodeMask));
  if (rcode > 15) {
    if (!edns) edns.emplace();
    edns->extended_rcode = static_cast<uint8_t>(rcode >> 4);
  } else if (edns) {
    edns->extended_rcode = 0;
  }
}

absl::Status ReadName(absl::Span<const uint8_t> wire, size_t* offset, std::string* out) {
  size_t pos = *offset;
  size_t chunk_start = pos;  // start of the labels read since the last jump
  size_t name_len = 0;
  bool jumped = false;
  while (true) {
    if (pos >= wire.size()) return Malformed("name runs past the end of the message");
    uint8_t len = wire[pos];
    if ((len & 0xC0) == 0xC0) {
      if (pos + 1 >= wire.size()) return Malformed("truncated compression pointer");
      size_t target = static_cast<size_t>((len & 0x3F) << 8) | wire[pos + 1];
      // Only strictly backwards, and before everything read since the last
      // jump: this rules out loops and forward pointers.
      if (target >= chunk_start) return Malformed("compression pointer loop or forward pointer");
      if (!jumped) *offset = pos + 2;
      jumped = true;
      pos = target;
      chunk_start = target;
      continue;
    }
    if ((len & 0xC0) != 0) return Malformed("reserved label type");
    if (len == 0) {
      out->push_back('\0');
      if (!jumped) *offset = pos + 1;
      return absl::OkStatus();
    }
    name_len += 1 + len;
    if (name_len + 1 > kMaxNameLength) return Malformed("name longer than 255 octets");
    if (pos + 1 + len > wire.size()) return Malformed("label runs past the end of the message");
    out->append(reinterpret_cast<const char*>(wire.data() + pos), 1 + len);
    pos += 1 + len;
  }
}

absl::StatusOr<Message> ParseMessage(absl::Span<const uint8_t> wire) {
  if (wire.size() < kHeaderSize) return Malformed("message shorter than a DNS header");
  Message m;
  m.id = Read16(wire.data());
  m.flags = Read16(wire.data() + 2);
  uint16_t counts[4] = {Read16(wire.data() + 4), Read16(wire.data() + 6), Read16(wire.data() + 8),
                        Read16(wire.data() + 10)};
  size_t pos = kHeaderSize;
  // A record needs at least 11 octets and a question 5: reject absurd counts
  // before reserving anything.
  if (size_t{counts[0]} * 5 + (size_t{counts[1]} + counts[2] + counts[3]) * 11 > wire.size()) {
    return Malformed("section counts exceed the message size");
  }
  m.questions.reserve(counts[0]);
  for (uint16_t i = 0; i < counts[0]; ++i) {
    Question q;
    if (auto s = ReadName(wire, &pos, &q.name); !s.ok()) return s;
    if (pos + 4 > wire.size()) return Malformed("truncated question");
    q.type = Read16(wire.data() + pos);
    q.klass = Read16(wire.data() + pos + 2);
    pos += 4;
    m.questions.push_back(std::move(q));
  }
  std::vector<Record>* sections[3] = {&m.answers, &m.authority, &m.additional};
  for (int s = 0; s < 3; ++s) {
    sections[s]->reserve(counts[s + 1]);
    for (uint16_t i = 0; i < counts[s + 1]; ++i) {
      Record rr;
      if (auto st = ReadName(wire, &pos, &rr.name); !st.ok()) return st;
      if (pos + 10 > wire.size()) return Malformed("truncated resource record header");
      rr.type = Read16(wire.data() + pos);
      rr.klass = Read16(wire.data() + pos + 2);
      rr.ttl = Read32(wire.data() + pos + 4);
      uint16_t rdlen = Read16(wire.data() + pos + 8);
      pos += 10;
      if (pos + rdlen > wire.size()) return Malformed("RDATA runs past the end of the message");
      if (rr.type == kTypeOPT) {
        if (s != 2) return Malformed("OPT record outside the additional section");
        if (m.edns) return Malformed("more than one OPT record");
        if (rr.name.size() != 1) return Malformed("OPT record not owned by the root");
        Edns e;
        e.udp_size = rr.klass;
        e.extended_rcode = static_cast<uint8_t>(rr.ttl >> 24);
        e.version = static_cast<uint8_t>(rr.ttl >> 16);
        e.dnssec_ok = (rr.ttl & kEdnsDoBit) != 0;
        size_t o = pos, end = pos + rdlen;
        while (o < end) {
          if (o + 4 > end) return Malformed("truncated EDNS option");
          EdnsOption opt;
          opt.code = Read16(wire.data() + o);
          uint16_t olen = Read16(wire.data() + o + 2);
          o += 4;
          if (o + olen > end) return Malformed("EDNS option runs past the OPT record");
          opt.data.assign(reinterpret_cast<const char*>(wire.data() + o), olen);
          o += olen;
          e.options.push_back(std::move(opt));
        }
        m.edns = std::move(e);
        pos += rdlen;
        continue;
      }
      if (auto st = ReadRdata(wire, pos, rdlen, rr.type, &rr.rdata); !st.ok()) return st;
      pos += rdlen;
      sections[s]->push_back(std::move(rr));
    }
  }
  if (pos != wire.size()) return Malformed("trailing bytes after the last record");
  return m;
}

absl::StatusOr<std::vector<uint8_t>> WriteMessage(const Message& m, const WriteOptions& options) {
  if (m.questions.size() > 0xFFFF || m.answers.size() > 0xFFFF || m.authority.size() > 0xFFFF ||
      m.additional.size() + (m.edns ? 1 : 0) > 0xFFFF) {
    return absl::InvalidArgumentError("too many records");
  }
  Writer w(options);
  bool ok = w.Put16(m.id) && w.Put16(m.flags) && w.Put16(static_cast<uint16_t>(m.questions.size())) &&
            w.Put16(static_cast<uint16_t>(m.answers.size())) &&
            w.Put16(static_cast<uint16_t>(m.authority.size())) &&
            w.Put16(static_cast<uint16_t>(m.additional.size() + (m.edns ? 1 : 0)));
  for (const Question& q : m.questions) {
    ok = ok && w.PutName(q.name, true) && w.Put16(q.type) && w.Put16(q.klass);
  }
  for (const auto* section : {&m.answers, &m.authority, &m.additional}) {
    for (const Record& rr : *section) ok = ok && w.PutRecord(rr);
  }
  if (ok && m.edns) {
    const Edns& e = *m.edns;
    uint32_t ttl = (uint32_t{e.extended_rcode} << 24) | (uint32_t{e.version} << 16) |
                   (e.dnssec_ok ? kEdnsDoBit : 0);
    ok = w.Put8(0) && w.Put16(kTypeOPT) && w.Put16(e.udp_size) && w.Put32(ttl);
    size_t rdlen = 0;
    for (const EdnsOption& o : e.options) rdlen += 4 + o.data.size();
    if (rdlen > 0xFFFF) return absl::InvalidArgumentError("EDNS options too long");
    ok = ok && w.Put16(static_cast<uint16_t>(rdlen));
    for (const EdnsOption& o : e.options) {
      if (o.data.size() > 0xFFFF) return absl::InvalidArgumentError("EDNS option too long");
      ok = ok && w.Put16(o.code) && w.Put16(static_cast<uint16_t>(o.data.size())) && w.PutBytes(o.data);
    }
  }
  if (!ok) return w.status();
  return std::move(w.buf());
}

EdnsOption MakeExtendedError(uint16_t info_code, std::string_view text) {
  EdnsOption o;
  o.code = kOptionExtendedError;
  o.data.push_back(static_cast<char>(info_code >> 8));
  o.data.push_back(static_cast<char>(info_code));
  o.data.append(text);
  return o;
}

}  // namespace nodedns::dns
