// Fuzzes both tiers of the wire code with one input:
//  - as a query: InspectQuery, the cache key and error answers;
//  - as an upstream answer: ParseMessage, write/re-parse round trip, the
//    cache image, and the cache-hit render, whose output must always parse.
// Any inconsistency aborts, so the fuzzer reports it as a crash.

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "lib/dns/answer.h"
#include "lib/dns/cache_image.h"
#include "lib/dns/message.h"
#include "lib/dns/query_view.h"
#include "lib/dns/writers.h"

using namespace nodedns::dns;

namespace {

void Check(bool ok) {
  if (!ok) abort();
}

void AsQuery(const uint8_t* data, size_t size) {
  QueryView q;
  QueryCheck check = InspectQuery(data, size, &q);
  static uint8_t out[70000];
  if (check == QueryCheck::kOk || check == QueryCheck::kBadVers) {
    Check(q.question_end <= size && q.qname_len >= 1);
    CacheKey key;
    MakeCacheKey(data, q, &key);
    Check(key.len == q.qname_len + 5);
    size_t n = WriteErrorAnswer(data, size, &q, check == QueryCheck::kOk ? kServFail : kBadVers,
                                kEdeNoReachableAuthority, 1232, out, sizeof(out));
    Check(n > 0 && ParseMessage({out, n}).ok());
  } else if (check == QueryCheck::kFormErr || check == QueryCheck::kNotImp) {
    size_t n = WriteErrorAnswer(data, size, nullptr, kFormErr, -1, 1232, out, sizeof(out));
    Check(n == kHeaderSize);
  }
}

void AsAnswer(const uint8_t* data, size_t size) {
  auto m = ParseMessage({data, size});
  if (!m.ok()) return;
  auto wire = WriteMessage(*m);
  if (wire.ok()) {
    auto again = ParseMessage(*wire);
    Check(again.ok());
    Check(again->answers.size() == m->answers.size() && again->authority.size() == m->authority.size() &&
          again->additional.size() == m->additional.size() && again->edns.has_value() == m->edns.has_value());
  }
  if (m->questions.size() != 1) return;
  auto image = BuildCacheImage(*m, TtlPolicy{});
  if (!image.ok()) return;
  // A client query for the same question, with EDNS, rendered from the image
  // both roomy (TCP) and tight (512-octet UDP).
  Message client;
  client.id = 0x5151;
  client.questions = m->questions;
  client.edns = Edns{};
  auto query = WriteMessage(client);
  if (!query.ok()) return;
  QueryView q;
  if (InspectQuery(query->data(), query->size(), &q) != QueryCheck::kOk) return;
  for (uint16_t limit : {uint16_t{512}, uint16_t{65535}}) {
    std::vector<uint8_t> out(image->wire.size() + kAnswerOverhead);
    std::memcpy(out.data(), image->wire.data(), image->wire.size());
    RenderParams p;
    p.size_limit = limit;
    p.age_seconds = 17;
    p.ede_code = kEdeStaleAnswer;
    bool truncated = false;
    size_t n = FinishAnswer(out.data(), image->wire.size(), image->ttl_offsets, query->data(), q, p, &truncated);
    Check(n <= out.size());
    Check(!truncated || n <= limit);
    auto rendered = ParseMessage({out.data(), n});
    Check(rendered.ok());
    Check(rendered->id == 0x5151 && rendered->edns.has_value());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  AsQuery(data, size);
  AsAnswer(data, size);
  return 0;
}
