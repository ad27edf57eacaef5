#include "lib/dns/cache_image.h"

#include <algorithm>
#include <limits>

#include "absl/status/status.h"
#include "lib/dns/name.h"

namespace nodedns::dns {
namespace {

// RFC 2308 section 5: the negative TTL is min(SOA TTL, SOA MINIMUM). Returns
// false when the authority section has no SOA.
bool NegativeTtl(const Message& m, uint32_t* ttl) {
  for (const Record& rr : m.authority) {
    if (rr.type != kTypeSOA || rr.rdata.size() < 22) continue;
    uint32_t minimum = Read32(reinterpret_cast<const uint8_t*>(rr.rdata.data()) + rr.rdata.size() - 4);
    *ttl = std::min(rr.ttl, minimum);
    return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<CacheImage> BuildCacheImage(const Message& response, const ImagePolicy& policy) {
  if (response.questions.size() != 1) return absl::InvalidArgumentError("answer without exactly one question");
  CacheImage image;
  Message m;
  m.flags = static_cast<uint16_t>(kFlagQR | kFlagRA | (response.flags & (kFlagAD | kRcodeMask)));
  m.questions = response.questions;
  m.questions[0].name = Lowercase(m.questions[0].name);
  m.answers = response.answers;
  m.authority = response.authority;
  m.additional = response.additional;
  uint16_t rcode = response.rcode();
  if (policy.minimal_responses) {
    bool negative = rcode == kNxDomain || (rcode == kNoError && response.answers.empty());
    if (negative) {
      std::erase_if(m.authority, [](const Record& rr) {
        return rr.type != kTypeSOA && rr.type != kTypeNSEC && rr.type != kTypeNSEC3 && rr.type != kTypeRRSIG;
      });
    } else if (rcode == kNoError) {
      m.authority.clear();
    }
    m.additional.clear();
  }
  size_t records = m.answers.size() + m.authority.size() + m.additional.size();

  bool truncated = (response.flags & kFlagTC) != 0;
  uint32_t ttl = std::numeric_limits<uint32_t>::max();
  if (rcode == kNxDomain || (rcode == kNoError && response.answers.empty())) {
    image.kind = rcode == kNxDomain ? AnswerKind::kNxDomain : AnswerKind::kNoData;
    uint32_t neg = 0;
    bool has_soa = NegativeTtl(response, &neg);
    ttl = std::min(neg, policy.negative_max_ttl);
    image.cacheable = has_soa;
  } else if (rcode == kNoError) {
    image.kind = AnswerKind::kPositive;
    // The entry is fresh as long as its shortest-lived record (RFC 2181 5.2:
    // an RRset's TTLs should agree; the minimum is the safe choice).
    // Only what is kept counts (with minimal responses, the answers).
    for (const auto* section : {&m.answers, &m.authority}) {
      for (const Record& rr : *section) ttl = std::min(ttl, rr.ttl);
    }
    image.cacheable = true;
  } else {
    image.kind = rcode == kServFail ? AnswerKind::kServFail : AnswerKind::kOther;
    ttl = 0;
    image.cacheable = false;
  }
  // TTLs with the high bit set are taken as unsigned and capped (RFC 8767 4).
  ttl = std::clamp(ttl, policy.min_ttl, std::max(policy.min_ttl, policy.max_ttl));
  if (image.kind == AnswerKind::kNxDomain || image.kind == AnswerKind::kNoData) {
    ttl = std::min(ttl, std::max(policy.negative_max_ttl, policy.min_ttl));
  }
  // Records show at most the entry's remaining lifetime, so that a client
  // never caches a record longer than we do; and at least the minimum.
  for (auto* section : {&m.answers, &m.authority, &m.additional}) {
    for (Record& rr : *section) rr.ttl = std::clamp(rr.ttl, policy.min_ttl, ttl);
  }
  image.ttl = ttl;
  if (ttl == 0 || truncated || records > kMaxImageRecords) image.cacheable = false;

  WriteOptions opts;
  opts.ttl_offsets = &image.ttl_offsets;
  auto wire = WriteMessage(m, opts);
  if (!wire.ok()) return wire.status();
  image.wire = std::move(*wire);
  return image;
}

}  // namespace nodedns::dns
