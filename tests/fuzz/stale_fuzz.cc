// libFuzzer target for the stale path: an upstream answer chosen by the fuzzer
// (records, TTLs with the high bit set, rcode, AD/TC, authority and glue)
// becomes a cache image under a fuzzed ImagePolicy, is stored with fuzzed
// deadlines (insert time, stale window, explicit deadlines out to the int64
// and absl::Time infinities), optionally goes through a snapshot and back, is
// looked up at a fuzzed moment (before, inside or past its TTL and stale
// window) and rendered for a fuzzed client (letter case, RD/CD/AD, EDNS or
// not, DO, UDP size, UDP or TCP, reply_ttl) by resolver::RenderHit, the code
// the resolver answers hits with. Unbound's serve-expired code had three CVEs
// in 2026; this is where ours would be.
//
// Invariants (any violation aborts):
//  - the lookup's verdict agrees with the entry's deadlines (fresh before
//    expiry, stale until the end of the window, a miss after it) and its
//    age and staleness are the real ones (saturated, never wrapped);
//  - the answer parses; ID, question (the client's case), RD/CD echoed,
//    QR and RA set, AA and Z clear, AD only for DO/AD clients, the image's
//    rcode;
//  - it fits the client's size (UDP: EDNS size capped by max_udp_size, 512
//    without EDNS; TCP 65535), and TC=1 exactly when the whole answer would
//    not (then no records but the OPT);
//  - every TTL: fresh, the stored TTL less the age (floored at 0), never
//    above the entry's TTL nor the max_ttl clamp; stale, exactly reply_ttl;
//  - EDNS clients get one OPT (our size, DO echoed, version 0) with EDE 3
//    (19 for NXDOMAIN/NODATA) when stale, 13 for a cached SERVFAIL, none for
//    a fresh answer (or, now and then, any code the fuzzer gives RenderHit);
//    other clients no OPT.

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "lib/cache/cache.h"
#include "lib/dns/answer.h"
#include "lib/dns/cache_image.h"
#include "lib/dns/message.h"
#include "lib/dns/name.h"
#include "lib/dns/query_view.h"
#include "lib/resolver/render.h"
#include "lib/snapshot/snapshot.h"

namespace {

using namespace nodedns;
using dns::AnswerKind;

// Aborts with the broken invariant's line, so a crash names what failed.
#define Check(ok)                                                                  \
  do {                                                                             \
    if (!(ok)) {                                                                   \
      std::fprintf(stderr, "stale_fuzz.cc:%d: invariant failed: %s\n", __LINE__, #ok); \
      abort();                                                                     \
    }                                                                              \
  } while (0)

// The cache's own clamp of a time to milliseconds (cache.cc).
int64_t Ms(absl::Time t) {
  constexpr int64_t kLimit = int64_t{1} << 61;
  return std::clamp<int64_t>(absl::ToUnixMillis(t), -kLimit, kLimit);
}

// The steady clock 30 h into the boot (as the snapshot fuzzer).
const absl::Time kBase = absl::UnixEpoch() + absl::Hours(30);

absl::Duration PickDuration(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 7)) {
    case 0: return absl::ZeroDuration();
    case 1: return absl::InfiniteDuration();
    case 2: return -absl::InfiniteDuration();
    case 3: return absl::Milliseconds(in.ConsumeIntegral<int64_t>());
    case 4: return absl::Seconds(in.ConsumeIntegral<int64_t>());
    case 5: return -absl::Seconds(in.ConsumeIntegralInRange<int64_t>(0, 100'000));
    default: return absl::Milliseconds(in.ConsumeIntegralInRange<int64_t>(0, 200'000'000));
  }
}

absl::Time PickTime(FuzzedDataProvider& in, absl::Time around) {
  switch (in.ConsumeIntegralInRange<int>(0, 9)) {
    case 0: return absl::InfinitePast();
    case 1: return absl::InfiniteFuture();
    case 2: return absl::FromUnixMillis(std::numeric_limits<int64_t>::min());
    case 3: return absl::FromUnixMillis(std::numeric_limits<int64_t>::max());
    case 4: return absl::UnixEpoch();
    default: return around + PickDuration(in);
  }
}

uint32_t PickTtl(FuzzedDataProvider& in) {
  static constexpr uint32_t kTtls[] = {0, 1, 29, 30, 31, 300, 3600, 86400, 604800, 0x7fffffff, 0x80000000, 0xffffffff};
  if (in.ConsumeBool()) return kTtls[in.ConsumeIntegralInRange<size_t>(0, std::size(kTtls) - 1)];
  return in.ConsumeIntegral<uint32_t>();
}

// A wire name of 0-3 fuzzed labels under `parent` (wire, may be "\0").
std::string PickName(FuzzedDataProvider& in, const std::string& parent) {
  std::string name;
  int labels = in.ConsumeIntegralInRange<int>(0, 3);
  for (int i = 0; i < labels; ++i) {
    std::string label = in.ConsumeBytesAsString(in.ConsumeIntegralInRange<size_t>(1, 63));
    if (label.empty()) break;
    if (name.size() + 1 + label.size() + parent.size() > dns::kMaxNameLength) break;
    name.push_back(static_cast<char>(label.size()));
    name += label;
  }
  return name + parent;
}

dns::Record PickRecord(FuzzedDataProvider& in, const std::string& qname, uint16_t qtype) {
  static constexpr uint16_t kTypes[] = {dns::kTypeA,   dns::kTypeAAAA,  dns::kTypeTXT,  dns::kTypeCNAME,
                                        dns::kTypeNS,  dns::kTypeSOA,   dns::kTypeRRSIG, dns::kTypeNSEC,
                                        dns::kTypeNSEC3, dns::kTypeMX};
  dns::Record rr;
  rr.name = in.ConsumeBool() ? qname : PickName(in, qname.size() > 1 ? qname.substr(qname[0] + 1) : qname);
  rr.type = in.ConsumeBool() ? qtype : kTypes[in.ConsumeIntegralInRange<size_t>(0, std::size(kTypes) - 1)];
  rr.ttl = PickTtl(in);
  switch (rr.type) {
    case dns::kTypeA: rr.rdata = in.ConsumeBytesAsString(4); rr.rdata.resize(4); break;
    case dns::kTypeAAAA: rr.rdata = in.ConsumeBytesAsString(16); rr.rdata.resize(16); break;
    case dns::kTypeCNAME:
    case dns::kTypeNS: rr.rdata = PickName(in, std::string(1, '\0')); break;
    case dns::kTypeMX: rr.rdata = std::string("\0\x0a", 2) + PickName(in, std::string(1, '\0')); break;
    case dns::kTypeSOA: {
      rr.rdata = PickName(in, std::string(1, '\0')) + PickName(in, std::string(1, '\0'));
      std::string numbers = in.ConsumeBytesAsString(20);
      numbers.resize(20);
      rr.rdata += numbers;
      break;
    }
    case dns::kTypeTXT: {
      std::string text = in.ConsumeBytesAsString(in.ConsumeIntegralInRange<size_t>(0, 255));
      rr.rdata = std::string(1, static_cast<char>(text.size())) + text;
      break;
    }
    default:  // RRSIG, NSEC, NSEC3, the question's type: opaque
      rr.rdata = in.ConsumeBytesAsString(in.ConsumeIntegralInRange<size_t>(0, 300));
      break;
  }
  return rr;
}

// The client's query: its own ID, letter case, flags and EDNS.
std::vector<uint8_t> PickQuery(FuzzedDataProvider& in, const std::string& qname, uint16_t qtype) {
  std::vector<uint8_t> q(dns::kHeaderSize);
  uint16_t id = in.ConsumeIntegral<uint16_t>();
  uint16_t flags = in.ConsumeIntegral<uint16_t>() & (dns::kFlagRD | dns::kFlagCD | dns::kFlagAD);
  bool edns = in.ConsumeBool();
  dns::Write16(q.data(), id);
  dns::Write16(q.data() + 2, flags);
  dns::Write16(q.data() + 4, 1);
  dns::Write16(q.data() + 10, edns ? 1 : 0);
  for (char c : qname) {
    uint8_t b = static_cast<uint8_t>(c);
    if (b >= 'a' && b <= 'z' && in.ConsumeBool()) b = static_cast<uint8_t>(b - 'a' + 'A');
    q.push_back(b);
  }
  q.resize(q.size() + 4);
  dns::Write16(q.data() + q.size() - 4, qtype);
  dns::Write16(q.data() + q.size() - 2, dns::kClassIN);
  if (edns) {
    uint8_t opt[11] = {0, 0, 41};
    dns::Write16(opt + 3, in.ConsumeIntegral<uint16_t>());  // the client's UDP size
    if (in.ConsumeBool()) opt[7] = 0x80;                     // DO
    q.insert(q.end(), opt, opt + sizeof(opt));
  }
  return q;
}

const dns::EdnsOption* FindEde(const dns::Message& m) {
  if (!m.edns) return nullptr;
  for (const auto& o : m.edns->options) {
    if (o.code == 15) return &o;
  }
  return nullptr;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);

  // The upstream's answer.
  dns::ImagePolicy policy;
  policy.min_ttl = in.ConsumeBool() ? 0 : PickTtl(in);
  policy.max_ttl = in.ConsumeBool() ? 86400 : PickTtl(in);
  policy.negative_max_ttl = in.ConsumeBool() ? 3600 : PickTtl(in);
  policy.minimal_responses = in.ConsumeBool();
  std::string qname = dns::Lowercase(PickName(in, std::string(1, '\0')));
  static constexpr uint16_t kQtypes[] = {dns::kTypeA, dns::kTypeAAAA, dns::kTypeTXT, dns::kTypeMX,
                                         dns::kTypeSOA, dns::kTypeNS, dns::kTypeCNAME, dns::kTypeANY};
  uint16_t qtype = in.ConsumeBool() ? kQtypes[in.ConsumeIntegralInRange<size_t>(0, std::size(kQtypes) - 1)]
                                    : in.ConsumeIntegral<uint16_t>();
  dns::Message m;
  m.flags = dns::kFlagQR | dns::kFlagRA;
  static constexpr uint16_t kRcodes[] = {dns::kNoError, dns::kNxDomain, dns::kServFail};
  uint16_t rcode = kRcodes[in.ConsumeIntegralInRange<size_t>(0, std::size(kRcodes) - 1)];
  m.flags |= rcode;
  if (in.ConsumeBool()) m.flags |= dns::kFlagAD;
  if (in.ConsumeIntegralInRange<int>(0, 15) == 0) m.flags |= dns::kFlagTC;
  m.questions.push_back({qname, qtype, dns::kClassIN});
  // A negative answer (NXDOMAIN, NODATA) has no answers and, to be cached,
  // the zone's SOA (RFC 2308): made likely, so both kinds get explored.
  bool negative = rcode == dns::kNxDomain || (rcode == dns::kNoError && in.ConsumeIntegralInRange<int>(0, 3) == 0);
  if (negative && rcode != dns::kServFail && in.ConsumeIntegralInRange<int>(0, 7) != 0) {
    dns::Record soa{qname.size() > 1 ? qname.substr(qname[0] + 1) : qname, dns::kTypeSOA, dns::kClassIN,
                    PickTtl(in), std::string("\0\0", 2)};
    std::string numbers(20, '\0');
    dns::Write32(reinterpret_cast<uint8_t*>(numbers.data()) + 16, PickTtl(in));  // MINIMUM
    soa.rdata += numbers;
    m.authority.push_back(soa);
  }
  for (auto* section : {&m.answers, &m.authority, &m.additional}) {
    if (rcode == dns::kServFail) break;  // the resolver caches a bare SERVFAIL
    if (negative && section == &m.answers) continue;
    int n = in.ConsumeIntegralInRange<int>(0, section == &m.answers ? 40 : 8);
    for (int i = 0; i < n && in.remaining_bytes() > 0; ++i) section->push_back(PickRecord(in, qname, qtype));
  }
  // As it would arrive: what the resolver's parser accepts from upstream.
  auto sent = dns::WriteMessage(m);
  if (!sent.ok()) return 0;
  auto arrived = dns::ParseMessage(*sent);
  if (!arrived.ok()) return 0;
  auto built = dns::BuildCacheImage(*arrived, policy);
  if (!built.ok()) return 0;
  dns::CacheImage image = std::move(*built);
  uint32_t clamp = std::max(policy.min_ttl, policy.max_ttl);
  Check(image.ttl <= clamp);
  if (rcode == dns::kServFail) {
    // As the resolver caches an upstream failure (servfail_ttl).
    image.ttl = in.ConsumeIntegralInRange<uint32_t>(1, 60);
    image.cacheable = true;
  }
  if (!image.cacheable) return 0;
  auto stored = dns::ParseMessage(image.wire);
  Check(stored.ok());

  // The client.
  std::vector<uint8_t> query = PickQuery(in, qname, qtype);
  dns::QueryView q;
  if (dns::InspectQuery(query.data(), query.size(), &q) != dns::QueryCheck::kOk) return 0;
  dns::CacheKey key;
  dns::MakeCacheKey(query.data(), q, &key);
  resolver::HitRender how;
  how.tcp = in.ConsumeBool();
  how.max_udp_size = in.ConsumeIntegralInRange<uint16_t>(512, 4096);  // [server] max_udp_size
  how.stale_ttl = in.ConsumeBool() ? 30 : in.ConsumeIntegralInRange<uint32_t>(0, 3600);  // reply_ttl

  // The entry, with its deadlines.
  cache::CacheOptions o;
  o.max_entries = 16;
  o.max_bytes = 1 << 20;
  o.shards = 1;
  auto made = cache::Cache::Create(o);
  Check(made.ok());
  std::unique_ptr<cache::Cache> cache = std::move(*made);
  absl::Time inserted = PickTime(in, kBase);
  absl::Time expires = inserted + absl::Seconds(image.ttl);
  absl::Time insert_now = inserted;
  absl::Duration max_stale = PickDuration(in);
  bool ok;
  if (in.ConsumeBool()) {
    ok = cache->Insert(key.view(), image, inserted, max_stale);
  } else {
    expires = PickTime(in, inserted);
    insert_now = PickTime(in, inserted);
    ok = cache->InsertWithDeadlines(key.view(), image, inserted, expires, insert_now, max_stale);
  }
  absl::Time stale_until = expires + max_stale;
  Check(ok == (insert_now < stale_until || insert_now < expires));
  absl::Time now = PickTime(in, in.ConsumeBool() ? expires : inserted);
  bool file_less = true;
  if (ok && in.ConsumeIntegralInRange<int>(0, 3) == 0) {
    file_less = false;
    // Through a restart: written and read on the same boot at `now`.
    snapshot::Moment at{{now, absl::FromUnixSeconds(1'700'000'000)}, "boot-id-16-octet"};
    std::string file = snapshot::Serialize(*cache, at);
    auto again = cache::Cache::Create(o);
    Check(again.ok());
    auto r = snapshot::Parse(file, again->get(), at, [&](std::string_view) { return max_stale; });
    if (!r.ok() || r->loaded != 1) return 0;  // out of the file's range, or already dead
    cache = std::move(*again);
  }

  // The entry's deadlines as kept (after the snapshot, as reloaded).
  auto entries = cache->Summaries();
  Check(entries.size() == (ok ? 1u : 0u));
  if (!ok) return 0;
  const cache::EntrySummary& e = entries[0];
  int64_t ins_ms = Ms(e.inserted_at), exp_ms = Ms(e.expires_at), until_ms = Ms(e.stale_until);
  if (file_less) {
    Check(ins_ms == Ms(inserted) && exp_ms == Ms(expires) && until_ms == Ms(stale_until));
  }

  // The lookup and the answer, as Resolver::HandleQuery does them: the UDP
  // listener's slot (max_udp_size + overhead + 64) or the TCP buffer.
  static uint8_t out[dns::kMaxMessageSize + dns::kAnswerOverhead];
  size_t cap = how.tcp ? sizeof(out) : size_t{how.max_udp_size} + dns::kAnswerOverhead + 64;
  cache::HitInfo hit;
  int64_t now_ms = Ms(now);
  cache::LookupStatus st = cache->Lookup(key.view(), now, out, cap - dns::kAnswerOverhead, &hit);
  if (now_ms >= until_ms && now_ms >= exp_ms) {
    Check(st == cache::LookupStatus::kMiss);
    return 0;
  }
  Check(st == (now_ms < exp_ms ? cache::LookupStatus::kFresh : cache::LookupStatus::kStale));
  auto seconds = [](int64_t ms) {
    return static_cast<uint32_t>(std::min<int64_t>(ms / 1000, std::numeric_limits<uint32_t>::max()));
  };
  Check(hit.age_seconds == (now_ms > ins_ms ? seconds(now_ms - ins_ms) : 0));
  Check(hit.stale_seconds == (st == cache::LookupStatus::kStale ? seconds(now_ms - exp_ms) : 0));
  Check(hit.image_len == image.wire.size() && hit.kind == image.kind);
  Check(hit.copied == (image.wire.size() <= cap - dns::kAnswerOverhead));
  how.stale = st == cache::LookupStatus::kStale;
  how.ede = resolver::HitEde(hit.kind, how.stale);
  // Now and then any EDE code (RenderHit takes what it is given): the OPT
  // must carry it, whatever it is.
  bool any_ede = in.ConsumeIntegralInRange<int>(0, 7) == 0;
  if (any_ede) how.ede = in.ConsumeIntegralInRange<int>(-1, 0xFFFF);
  bool truncated = false;
  size_t n = resolver::RenderHit(hit, query.data(), q, how, out, cap, &truncated);
  Check(n > 0 && n <= cap);

  // What the client gets.
  auto got = dns::ParseMessage({out, n});
  Check(got.ok());
  const dns::Message& a = *got;
  size_t limit = how.tcp ? dns::kMaxMessageSize : q.UdpLimit(how.max_udp_size);
  Check(n <= limit);
  Check(a.id == q.id);
  Check(std::memcmp(out + dns::kHeaderSize, query.data() + dns::kHeaderSize, q.question_end - dns::kHeaderSize) == 0);
  Check((a.flags & dns::kFlagQR) && (a.flags & dns::kFlagRA) && !(a.flags & dns::kFlagAA));
  Check(((a.flags >> 11) & 0xf) == 0 && (a.flags & 0x0040) == 0);  // QUERY, Z clear
  Check((a.flags & (dns::kFlagRD | dns::kFlagCD)) == (q.flags & (dns::kFlagRD | dns::kFlagCD)));
  Check(!(a.flags & dns::kFlagAD) || ((stored->flags & dns::kFlagAD) && (q.dnssec_ok || q.ad())));
  Check((a.flags & dns::kRcodeMask) == (stored->flags & dns::kRcodeMask));
  size_t opt_len = q.has_edns ? (how.ede >= 0 ? 17 : 11) : 0;
  bool must_truncate = !hit.copied || image.wire.size() + opt_len > limit;
  Check(truncated == must_truncate && ((a.flags & dns::kFlagTC) != 0) == truncated);
  if (truncated) {
    Check(a.answers.empty() && a.authority.empty() && a.additional.empty());
  } else {
    Check(a.answers.size() == stored->answers.size() && a.authority.size() == stored->authority.size() &&
          a.additional.size() == stored->additional.size());
    const std::vector<dns::Record>* mine[] = {&a.answers, &a.authority, &a.additional};
    const std::vector<dns::Record>* theirs[] = {&stored->answers, &stored->authority, &stored->additional};
    for (int s = 0; s < 3; ++s) {
      for (size_t i = 0; i < mine[s]->size(); ++i) {
        uint32_t ttl = (*mine[s])[i].ttl, kept = (*theirs[s])[i].ttl;
        Check(kept <= image.ttl);
        if (how.stale) {
          Check(ttl == how.stale_ttl);
        } else {
          Check(ttl == (kept > hit.age_seconds ? kept - hit.age_seconds : 0));
          Check(ttl <= image.ttl);
        }
      }
    }
  }
  Check(a.edns.has_value() == q.has_edns);
  if (q.has_edns) {
    Check(a.edns->udp_size == how.max_udp_size && a.edns->version == 0 && a.edns->dnssec_ok == q.dnssec_ok);
    const dns::EdnsOption* ede = FindEde(a);
    int want = how.stale ? (image.kind == AnswerKind::kNxDomain || image.kind == AnswerKind::kNoData
                                ? dns::kEdeStaleNxDomain
                                : dns::kEdeStaleAnswer)
                         : (image.kind == AnswerKind::kServFail ? dns::kEdeCachedError : -1);
    if (any_ede) want = how.ede;
    Check(how.ede == want);
    Check((ede != nullptr) == (want >= 0));
    if (ede) Check(ede->data.size() >= 2 && dns::Read16(reinterpret_cast<const uint8_t*>(ede->data.data())) == want);
  }
  return 0;
}
