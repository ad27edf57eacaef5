#include "lib/resolver/resolver.h"

#include <spdlog/spdlog.h>

#include <cstring>

#include "lib/dns/message.h"
#include "lib/dns/name.h"
#include "lib/upstream/upstream.h"

namespace nodedns::resolver {

using dns::QueryCheck;

Resolver::Resolver(const ResolverOptions& options, cache::Cache* cache, upstream::Router* router,
                   const Clock* clock, Counters* counters)
    : options_(options), cache_(cache), router_(router), clock_(clock), counters_(counters),
      reply_buf_(kMaxAnswerSize) {}

void Resolver::CountAnswer(const uint8_t* answer, bool truncated) {
  switch (dns::Read16(answer + 2) & dns::kRcodeMask) {
    case dns::kNoError: Bump(counters_->answers_noerror); break;
    case dns::kNxDomain: Bump(counters_->answers_nxdomain); break;
    case dns::kServFail: Bump(counters_->answers_servfail); break;
    default: Bump(counters_->answers_other_rcode); break;
  }
  if (truncated) Bump(counters_->answers_truncated);
}

size_t Resolver::Error(const uint8_t* query, size_t len, const dns::QueryView* q, uint16_t rcode, int ede,
                       uint8_t* out, size_t cap) {
  size_t n = dns::WriteErrorAnswer(query, len, q, rcode, ede, options_.max_udp_size, out, cap);
  if (n > 0) CountAnswer(out, false);
  return n;
}

size_t Resolver::AnswerFromImage(const uint8_t* query, const dns::QueryView& q, bool tcp, uint8_t* out,
                                 size_t cap, uint32_t age) {
  dns::RenderParams params;
  params.age_seconds = age;
  params.size_limit = tcp ? dns::kMaxMessageSize : q.UdpLimit(options_.max_udp_size);
  params.server_udp_size = options_.max_udp_size;
  bool truncated = true;
  size_t n;
  if (hit_.copied) {
    n = dns::FinishAnswer(out, hit_.image_len, {hit_.ttl_offsets, hit_.num_ttls}, query, q, params, &truncated);
  } else {
    n = dns::WriteTruncatedAnswer(hit_.header, query, q, params, out, cap);
  }
  if (n > 0) CountAnswer(out, truncated);
  return n;
}

Resolver::Outcome Resolver::HandleQuery(const uint8_t* query, size_t len, const ReplyTarget& to, uint8_t* out,
                                        size_t cap, size_t* out_len) {
  Bump(to.tcp ? counters_->queries_tcp : counters_->queries_udp);
  dns::QueryView q;
  switch (dns::InspectQuery(query, len, &q)) {
    case QueryCheck::kTooShort:
      Bump(counters_->dropped_too_short);
      return Outcome::kDropped;
    case QueryCheck::kIsResponse:
      Bump(counters_->dropped_is_response);
      return Outcome::kDropped;
    case QueryCheck::kNotImp:
      Bump(counters_->notimp_sent);
      // The question is echoed only when it is well-formed.
      *out_len = Error(query, len, q.question_end ? &q : nullptr, dns::kNotImp, -1, out, cap);
      return *out_len ? Outcome::kAnswered : Outcome::kDropped;
    case QueryCheck::kFormErr:
      Bump(counters_->formerr_sent);
      *out_len = Error(query, len, nullptr, dns::kFormErr, -1, out, cap);
      return *out_len ? Outcome::kAnswered : Outcome::kDropped;
    case QueryCheck::kBadVers:
      Bump(counters_->badvers_sent);
      *out_len = Error(query, len, &q, dns::kBadVers, -1, out, cap);
      return *out_len ? Outcome::kAnswered : Outcome::kDropped;
    case QueryCheck::kOk:
      break;
  }

  dns::CacheKey key;
  dns::MakeCacheKey(query, q, &key);
  absl::Time now = clock_->Now();
  cache::LookupStatus st = cache_->Lookup(key.view(), now, out, cap - dns::kAnswerOverhead, &hit_);
  if (st == cache::LookupStatus::kFresh) {
    Bump(counters_->cache_hits);
    *out_len = AnswerFromImage(query, q, to.tcp, out, cap, hit_.age_seconds);
    return *out_len ? Outcome::kAnswered : Outcome::kDropped;
  }
  // A stale entry is not served here yet (the resilience layer decides when
  // it may be); the query goes upstream like a miss.
  Bump(counters_->cache_misses);

  auto it = pending_.find(absl::string_view(key.view().data(), key.view().size()));
  if (it != pending_.end()) {
    if (it->second->waiters.size() >= options_.max_waiters) {
      Bump(counters_->waiters_overflow);
      *out_len = Error(query, len, &q, dns::kServFail, dns::kEdeOther, out, cap);
      return *out_len ? Outcome::kAnswered : Outcome::kDropped;
    }
    Bump(counters_->coalesced);
    it->second->waiters.push_back(
        Waiter{to, q, std::string(reinterpret_cast<const char*>(query), q.question_end)});
    return Outcome::kPending;
  }
  if (pending_.size() >= options_.max_pending) {
    Bump(counters_->pending_overflow);
    *out_len = Error(query, len, &q, dns::kServFail, dns::kEdeOther, out, cap);
    return *out_len ? Outcome::kAnswered : Outcome::kDropped;
  }
  if (router_->Route(key.qname()) == nullptr) {
    Bump(counters_->no_route);
    *out_len = Error(query, len, &q, dns::kServFail, dns::kEdeNoReachableAuthority, out, cap);
    return *out_len ? Outcome::kAnswered : Outcome::kDropped;
  }
  auto p = std::make_unique<Pending>();
  p->waiters.push_back(Waiter{to, q, std::string(reinterpret_cast<const char*>(query), q.question_end)});
  pending_.emplace(std::string(key.view()), std::move(p));
  StartUpstream(key, q);
  return Outcome::kPending;
}

void Resolver::StartUpstream(const dns::CacheKey& key, const dns::QueryView& q) {
  // Our own query: RD, the client's CD, the lowercased question, and EDNS with
  // our buffer size and the client's DO bit (DO and CD are part of the key).
  uint8_t buf[dns::kHeaderSize + dns::kMaxNameLength + 4 + 11];
  std::string_view qname = key.qname();
  dns::Write16(buf, 0);
  dns::Write16(buf + 2, static_cast<uint16_t>(dns::kFlagRD | (q.cd() ? dns::kFlagCD : 0)));
  dns::Write16(buf + 4, 1);
  dns::Write16(buf + 6, 0);
  dns::Write16(buf + 8, 0);
  dns::Write16(buf + 10, 1);
  size_t n = dns::kHeaderSize;
  std::memcpy(buf + n, qname.data(), qname.size());
  n += qname.size();
  dns::Write16(buf + n, q.qtype);
  dns::Write16(buf + n + 2, q.qclass);
  n += 4;
  n += dns::WriteOpt(buf + n, dns::kDefaultEdnsPayload, 0, q.dnssec_ok, -1);

  upstream::Upstream* set = router_->Route(qname);
  Bump(counters_->upstream_queries);
  std::string k(key.view());
  set->Send({buf, n}, [this, k](const absl::Status& status, absl::Span<const uint8_t> answer) {
    OnUpstreamAnswer(k, status, answer);
  });
}

void Resolver::OnUpstreamAnswer(const std::string& key, const absl::Status& status,
                                absl::Span<const uint8_t> answer) {
  auto node = pending_.extract(key);
  if (node.empty()) return;  // cannot happen: one upstream query per key
  Pending& p = *node.mapped();
  if (!status.ok()) {
    if (absl::IsDeadlineExceeded(status)) {
      Bump(counters_->upstream_timeouts);
    } else {
      Bump(counters_->upstream_errors);
    }
    spdlog::debug("upstream query failed: {}", status.ToString());
    AnswerWaiters(p, nullptr,
                  absl::IsDeadlineExceeded(status) ? dns::kEdeNoReachableAuthority : dns::kEdeNetworkError);
    return;
  }
  auto msg = dns::ParseMessage(answer);
  if (!msg.ok()) {
    Bump(counters_->upstream_malformed);
    AnswerWaiters(p, nullptr, dns::kEdeNetworkError);
    return;
  }
  std::string_view qname(key.data(), key.size() - 5);
  uint16_t qtype = dns::Read16(reinterpret_cast<const uint8_t*>(key.data()) + key.size() - 5);
  uint16_t qclass = dns::Read16(reinterpret_cast<const uint8_t*>(key.data()) + key.size() - 3);
  if (!(msg->flags & dns::kFlagQR) || msg->questions.size() != 1 || !dns::NamesEqual(msg->questions[0].name, qname) ||
      msg->questions[0].type != qtype || msg->questions[0].klass != qclass) {
    Bump(counters_->upstream_mismatched);
    AnswerWaiters(p, nullptr, dns::kEdeNetworkError);
    return;
  }
  auto image = dns::BuildCacheImage(*msg, options_.ttl);
  if (!image.ok()) {
    Bump(counters_->upstream_malformed);
    AnswerWaiters(p, nullptr, dns::kEdeNetworkError);
    return;
  }
  if (image->kind == dns::AnswerKind::kServFail || msg->rcode() == dns::kRefused) {
    Bump(counters_->upstream_servfail);
  } else {
    Bump(counters_->upstream_answers);
  }
  if (image->cacheable && cache_->Insert(key, *image, clock_->Now())) Bump(counters_->cache_inserts);
  AnswerWaiters(p, &*image, -1);
}

void Resolver::AnswerWaiters(Pending& p, const dns::CacheImage* image, int ede_on_failure) {
  uint8_t* out = reply_buf_.data();
  for (const Waiter& w : p.waiters) {
    const uint8_t* query = reinterpret_cast<const uint8_t*>(w.prefix.data());
    size_t n;
    if (image == nullptr) {
      n = Error(query, w.prefix.size(), &w.q, dns::kServFail, ede_on_failure, out, reply_buf_.size());
    } else {
      dns::RenderParams params;
      params.size_limit = w.to.tcp ? dns::kMaxMessageSize : w.q.UdpLimit(options_.max_udp_size);
      params.server_udp_size = options_.max_udp_size;
      bool truncated = false;
      std::memcpy(out, image->wire.data(), image->wire.size());
      n = dns::FinishAnswer(out, image->wire.size(), image->ttl_offsets, query, w.q, params, &truncated);
      CountAnswer(out, truncated);
    }
    if (n > 0) w.to.sink->SendReply(w.to, {out, n});
  }
}

}  // namespace nodedns::resolver
