#include "lib/resolver/resolver.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "lib/dns/message.h"
#include "lib/dns/name.h"
#include "lib/dns/writers.h"
#include "lib/resolver/render.h"

namespace nodedns::resolver {

using dns::QueryCheck;
using upstream::Health;
using upstream::Priority;
using upstream::SendResult;

namespace {
// How long a client may keep the NODATA of a filtered AAAA query (the
// synthesised SOA's TTL and MINIMUM).
constexpr uint32_t kFilteredAaaaTtl = 60;
}  // namespace

Resolver::Resolver(const ResolverOptions& options, cache::Cache* cache, upstream::Router* router,
                   const SteadyClock* clock, TimerQueue* timers, Counters* counters, uint32_t seed,
                   LoopProbes* loop_probes)
    : options_(options), cache_(cache), router_(router), clock_(clock), timers_(timers), counters_(counters),
      rng_(seed), loop_probes_(loop_probes), shares_(options.fair_share), reply_buf_(kMaxAnswerSize),
      entry_buf_(kMaxAnswerSize) {}

Resolver::~Resolver() {
  for (auto& [key, id] : prefetch_scheduled_) timers_->Cancel(id);
  for (auto& [key, p] : pending_) {
    if (p->stale_timer) timers_->Cancel(p->stale_timer);
  }
  for (auto& [id, p] : superseded_) {
    if (p->stale_timer) timers_->Cancel(p->stale_timer);
  }
}

void Resolver::CountAnswer(const uint8_t* answer, bool truncated) {
  switch (dns::Read16(answer + 2) & dns::kRcodeMask) {
    case dns::kNoError: Bump(counters_->answers_noerror); break;
    case dns::kNxDomain: Bump(counters_->answers_nxdomain); break;
    case dns::kServFail: Bump(counters_->answers_servfail); break;
    default: Bump(counters_->answers_other_rcode); break;
  }
  if (truncated) Bump(counters_->answers_truncated);
}

void Resolver::CountStale(StaleReason reason, uint32_t stale_seconds) {
  switch (reason) {
    case StaleReason::kTimeout: Bump(counters_->stale_answers_timeout); break;
    case StaleReason::kFailure: Bump(counters_->stale_answers_failure); break;
    case StaleReason::kBreaker: Bump(counters_->stale_answers_breaker); break;
    case StaleReason::kOverCap: Bump(counters_->stale_answers_over_cap); break;
  }
  counters_->stale_age.Record(stale_seconds);
}

size_t Resolver::Error(const uint8_t* query, size_t len, const dns::QueryView* q, uint16_t rcode, int ede,
                       uint8_t* out, size_t cap) {
  size_t n = dns::WriteErrorAnswer(query, len, q, rcode, ede, options_.max_udp_size, out, cap);
  if (n > 0) CountAnswer(out, false);
  return n;
}

Resolver::Waiter Resolver::MakeWaiter(const ReplyTarget& to, const dns::QueryView& q, const uint8_t* query,
                                      bool stale_fallback) {
  return Waiter{to, q, std::string(reinterpret_cast<const char*>(query), q.question_end), stale_fallback};
}

dns::RenderParams Resolver::ParamsFor(const dns::QueryView& q, bool tcp) const {
  return RenderParamsFor(q, tcp, options_.max_udp_size);
}

size_t Resolver::AnswerFromHit(const uint8_t* query, const dns::QueryView& q, bool tcp, uint8_t* out, size_t cap,
                               bool stale) {
  HitRender how{.stale = stale,
                .stale_ttl = options_.stale_reply_ttl,
                .ede = HitEde(hit_.kind, stale),
                .tcp = tcp,
                .max_udp_size = options_.max_udp_size};
  bool truncated = true;
  size_t n = RenderHit(hit_, query, q, how, out, cap, &truncated);
  if (n > 0) CountAnswer(out, truncated);
  return n;
}

size_t Resolver::AnswerStale(const uint8_t* query, const dns::QueryView& q, bool tcp, uint8_t* out, size_t cap,
                             StaleReason reason) {
  CountStale(reason, hit_.stale_seconds);
  return AnswerFromHit(query, q, tcp, out, cap, true);
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

  std::string_view qname(reinterpret_cast<const char*>(query) + dns::kHeaderSize, q.qname_len);
  if (loop_probes_ != nullptr && loop_probes_->Seen(qname)) {
    // Our own loop probe came back in: answered here, never forwarded.
    Bump(counters_->loop_probes_returned);
    *out_len = Error(query, len, &q, dns::kServFail, dns::kEdeOther, out, cap);
    return *out_len ? Outcome::kAnswered : Outcome::kDropped;
  }
  if (q.qtype == dns::kTypeAAAA && router_->filters_aaaa()) {
    const upstream::Zone* zone = router_->Route(qname);
    if (zone != nullptr && zone->filter_aaaa) {
      Bump(counters_->aaaa_filtered);
      *out_len = dns::WriteNoDataAnswer(query, q, zone->wire_length, kFilteredAaaaTtl, options_.max_udp_size, out, cap);
      if (*out_len > 0) CountAnswer(out, false);
      return *out_len ? Outcome::kAnswered : Outcome::kDropped;
    }
  }
  dns::CacheKey key;
  dns::MakeCacheKey(query, q, &key);
  absl::Time now = clock_->Now();
  cache::LookupStatus st = cache_->Lookup(key.view(), now, out, cap - dns::kAnswerOverhead, &hit_);
  if (st == cache::LookupStatus::kFresh && hit_.kind == dns::AnswerKind::kServFail && ServfailOutdated(key, now)) {
    st = cache::LookupStatus::kMiss;
  }
  if (st == cache::LookupStatus::kFresh) {
    if (hit_.kind == dns::AnswerKind::kServFail) {
      Bump(counters_->servfail_cached);
      *out_len = AnswerFromHit(query, q, to.tcp, out, cap, false);
    } else {
      Bump(counters_->cache_hits);
      *out_len = AnswerFromHit(query, q, to.tcp, out, cap, false);
      if (options_.prefetch) MaybePrefetch(key, now);
    }
    return *out_len ? Outcome::kAnswered : Outcome::kDropped;
  }
  Bump(counters_->cache_misses);
  if (st == cache::LookupStatus::kStale) return HandleStale(query, len, q, key, to, out, cap, out_len);
  return HandleMiss(query, len, q, key, to, out, cap, out_len);
}

bool Resolver::ServfailOutdated(const dns::CacheKey& key, absl::Time now) {
  // Newer evidence wins here too: once the zone has answered after an
  // upstream failure was cached, the failure says nothing any more (but a
  // name broken on its own is asked at most once per failure_recheck_min).
  const upstream::Zone* zone = router_->Route(key.qname());
  return zone != nullptr && zone->upstream->last_good_answer() > hit_.inserted_at &&
         now - hit_.inserted_at >= options_.failure_recheck_min;
}

Resolver::Outcome Resolver::HandleStale(const uint8_t* query, size_t /*len*/, const dns::QueryView& q,
                                        const dns::CacheKey& key, const ReplyTarget& to, uint8_t* out, size_t cap,
                                        size_t* out_len) {
  auto answer_stale = [&](StaleReason reason) {
    *out_len = AnswerStale(query, q, to.tcp, out, cap, reason);
    return *out_len ? Outcome::kAnswered : Outcome::kDropped;
  };
  absl::Time now = clock_->Now();
  const upstream::Zone* zone = router_->Route(key.qname());
  if (zone == nullptr) return answer_stale(StaleReason::kBreaker);
  // RFC 8767 section 5: after a failed refresh, answer stale at once for the
  // failure recheck time without asking again, unless the zone has answered
  // since (newer evidence wins, per zone: one answer to anything, a probe
  // included, ends the window of every name that failed before it).
  if (absl::Duration since = now - hit_.refresh_failed_at; since < options_.failure_recheck) {
    bool zone_answered_since = zone->upstream->last_good_answer() > hit_.refresh_failed_at;
    if (!zone_answered_since || since < options_.failure_recheck_min) return answer_stale(StaleReason::kFailure);
  }
  Health health = zone->upstream->health();
  if (health == Health::kDown) return answer_stale(StaleReason::kBreaker);

  auto it = pending_.find(absl::string_view(key.view().data(), key.view().size()));
  if (it != pending_.end()) {
    Pending& p = *ResendIfLost(key.view(), it->second.get(), now);
    if (health == Health::kDegraded || p.waiters.size() >= options_.max_waiters) {
      return answer_stale(StaleReason::kFailure);
    }
    Bump(counters_->coalesced);
    p.waiters.push_back(MakeWaiter(to, q, query, true));
    ArmStaleTimer(p, now);
    return Outcome::kPending;
  }
  if (pending() >= options_.max_pending) return answer_stale(StaleReason::kOverCap);
  Pending* p = nullptr;
  // A refresh the client waits for (the zone is healthy) is that client's
  // query: client priority, in the client's flow, so the fair queue serves
  // it in turn with the client's misses instead of behind every queued miss
  // of another client (a flood). A background refresh (degraded zone) waits
  // behind client misses, within refresh_share. (Found by the simulation,
  // seeds 1273 and 2831: an expired name answered stale during a flood.)
  bool waited_for = health != Health::kDegraded;
  SendResult sent = StartUpstream(
      key.view(), zone, waited_for ? Priority::kClient : Priority::kRefresh,
      waited_for ? ClientFlow(to.peer, options_.fair_share.ipv4_prefix, options_.fair_share.ipv6_prefix)
                 : upstream::kNoFlow,
      &p);
  if (sent == SendResult::kOverCap) return answer_stale(StaleReason::kOverCap);
  if (sent == SendResult::kUnavailable) return answer_stale(StaleReason::kBreaker);
  if (waited_for) {  // still a refresh of an expired entry, counted as one
    p->refresh = true;
    Bump(counters_->refreshes);
  }
  if (health == Health::kDegraded) return answer_stale(StaleReason::kFailure);  // refresh runs in the background
  p->waiters.push_back(MakeWaiter(to, q, query, true));
  ArmStaleTimer(*p, now);
  return Outcome::kPending;
}

Resolver::Outcome Resolver::HandleMiss(const uint8_t* query, size_t len, const dns::QueryView& q,
                                       const dns::CacheKey& key, const ReplyTarget& to, uint8_t* out, size_t cap,
                                       size_t* out_len) {
  auto fail = [&](std::atomic<uint64_t>& counter, int ede) {
    Bump(counter);
    *out_len = Error(query, len, &q, dns::kServFail, ede, out, cap);
    return *out_len ? Outcome::kAnswered : Outcome::kDropped;
  };
  auto it = pending_.find(absl::string_view(key.view().data(), key.view().size()));
  if (it != pending_.end()) {
    Pending* p = ResendIfLost(key.view(), it->second.get(), clock_->Now());
    if (p->waiters.size() >= options_.max_waiters) return fail(counters_->waiters_overflow, dns::kEdeOther);
    Bump(counters_->coalesced);
    p->waiters.push_back(MakeWaiter(to, q, query, false));
    return Outcome::kPending;
  }
  upstream::FlowId client =
      ClientFlow(to.peer, options_.fair_share.ipv4_prefix, options_.fair_share.ipv6_prefix);
  if (Outcome o = Admit(query, len, q, to, &client, out, cap, out_len); o != Outcome::kPending) return o;
  if (pending() >= options_.max_pending) return fail(counters_->pending_overflow, dns::kEdeOther);
  const upstream::Zone* zone = router_->Route(key.qname());
  if (zone == nullptr) return fail(counters_->no_route, dns::kEdeNoReachableAuthority);
  if (zone->upstream->health() == Health::kDown) {
    return fail(counters_->servfail_unreachable, dns::kEdeNoReachableAuthority);
  }
  Pending* p = nullptr;
  SendResult sent = StartUpstream(key.view(), zone, Priority::kClient, client, &p);
  if (sent == SendResult::kOverCap) return fail(counters_->servfail_local, dns::kEdeNoReachableAuthority);
  if (sent != SendResult::kSent) return fail(counters_->servfail_unreachable, dns::kEdeNoReachableAuthority);
  p->waiters.push_back(MakeWaiter(to, q, query, false));
  return Outcome::kPending;
}

void Resolver::NoteReceiveBacklog(size_t queued, size_t capacity) {
  if (!options_.shed.enabled || capacity == 0) return;
  if (static_cast<double>(queued) < static_cast<double>(capacity) * options_.shed.backlog) return;
  overloaded_until_ = clock_->Now() + options_.shed.hold;
}

bool Resolver::overloaded(absl::Time now) const {
  return now < overloaded_until_ ||
         static_cast<double>(pending()) >= static_cast<double>(options_.max_pending) * options_.fair_share.pending_pressure;
}

Resolver::Outcome Resolver::Admit(const uint8_t* query, size_t len, const dns::QueryView& q, const ReplyTarget& to,
                                  upstream::FlowId* client, uint8_t* out, size_t cap, size_t* out_len) {
  absl::Time now = clock_->Now();
  bool untracked = false;
  bool heavy = shares_.NoteMiss(*client, now, &untracked);
  if (untracked) {
    Bump(counters_->shed_clients_untracked);
    *client = ClientShares::kUntracked;
  }
  bool overloaded_now = overloaded(now);
  if (overloaded_now && !was_overloaded_) Bump(counters_->shed_overloaded);
  was_overloaded_ = overloaded_now;
  if (!overloaded_now) return Outcome::kPending;
  if (options_.shed.enabled && heavy) {
    // Shed before any upstream work. A UDP client that floods gets nothing
    // back (the cheapest answer, and what it would get from a full socket
    // buffer); a TCP client gets REFUSED, so its connection is not left
    // waiting for an answer that never comes.
    if (!to.tcp && !options_.shed.refuse) {
      Bump(counters_->shed_dropped);
      return Outcome::kDropped;
    }
    Bump(counters_->shed_refused);
    *out_len = Error(query, len, &q, dns::kRefused, -1, out, cap);
    return *out_len ? Outcome::kAnswered : Outcome::kDropped;
  }
  if (static_cast<double>(pending()) >= static_cast<double>(options_.max_pending) * options_.fair_share.pending_pressure &&
      shares_.OverPendingShare(*client, pending())) {
    Bump(counters_->fair_share_refused);
    *out_len = Error(query, len, &q, dns::kServFail, dns::kEdeOther, out, cap);
    return *out_len ? Outcome::kAnswered : Outcome::kDropped;
  }
  return Outcome::kPending;
}

}  // namespace nodedns::resolver
