#include "lib/resolver/resolver.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "lib/dns/message.h"
#include "lib/dns/name.h"

namespace nodedns::resolver {

using dns::QueryCheck;
using upstream::Health;
using upstream::Priority;
using upstream::SendResult;

namespace {


bool IsNegative(dns::AnswerKind k) { return k == dns::AnswerKind::kNxDomain || k == dns::AnswerKind::kNoData; }

}  // namespace

Resolver::Resolver(const ResolverOptions& options, cache::Cache* cache, upstream::Router* router,
                   const SteadyClock* clock, TimerQueue* timers, Counters* counters, uint32_t seed)
    : options_(options), cache_(cache), router_(router), clock_(clock), timers_(timers), counters_(counters),
      rng_(seed), reply_buf_(kMaxAnswerSize), entry_buf_(kMaxAnswerSize) {}

Resolver::~Resolver() {
  for (auto& [key, id] : prefetch_scheduled_) timers_->Cancel(id);
  for (auto& [key, p] : pending_) {
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
  RecordStaleAge(*counters_, stale_seconds);
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

void Resolver::ArmStaleTimer(Pending& p, std::string_view key, const upstream::Zone* zone, absl::Time now) {
  if (p.stale_timer) return;
  std::string k(key);
  p.stale_timer = timers_->Add(now + zone->upstream->client_timeout(), [this, k] { OnStaleTimer(k); });
}

dns::RenderParams Resolver::ParamsFor(const dns::QueryView& q, bool tcp) const {
  dns::RenderParams params;
  params.size_limit = tcp ? dns::kMaxMessageSize : q.UdpLimit(options_.max_udp_size);
  params.server_udp_size = options_.max_udp_size;
  return params;
}

size_t Resolver::AnswerFromHit(const uint8_t* query, const dns::QueryView& q, bool tcp, uint8_t* out, size_t cap,
                               bool stale, int ede) {
  dns::RenderParams params = ParamsFor(q, tcp);
  params.age_seconds = hit_.age_seconds;
  params.stale = stale;
  params.stale_ttl = options_.stale_reply_ttl;
  params.ede_code = ede;
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

size_t Resolver::AnswerStale(const uint8_t* query, const dns::QueryView& q, bool tcp, uint8_t* out, size_t cap,
                             StaleReason reason) {
  CountStale(reason, hit_.stale_seconds);
  return AnswerFromHit(query, q, tcp, out, cap, true,
                       IsNegative(hit_.kind) ? dns::kEdeStaleNxDomain : dns::kEdeStaleAnswer);
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
  if (st == cache::LookupStatus::kFresh && hit_.kind == dns::AnswerKind::kServFail && ServfailOutdated(key, now)) {
    st = cache::LookupStatus::kMiss;
  }
  if (st == cache::LookupStatus::kFresh) {
    if (hit_.kind == dns::AnswerKind::kServFail) {
      Bump(counters_->servfail_cached);
      *out_len = AnswerFromHit(query, q, to.tcp, out, cap, false, dns::kEdeCachedError);
    } else {
      Bump(counters_->cache_hits);
      *out_len = AnswerFromHit(query, q, to.tcp, out, cap, false, -1);
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

Resolver::Outcome Resolver::HandleStale(const uint8_t* query, size_t len, const dns::QueryView& q,
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
    Pending& p = *it->second;
    if (health == Health::kDegraded || p.waiters.size() >= options_.max_waiters) {
      return answer_stale(StaleReason::kFailure);
    }
    Bump(counters_->coalesced);
    p.waiters.push_back(MakeWaiter(to, q, query, true));
    ArmStaleTimer(p, key.view(), zone, now);
    return Outcome::kPending;
  }
  if (pending_.size() >= options_.max_pending) return answer_stale(StaleReason::kOverCap);
  Pending* p = nullptr;
  SendResult sent = StartUpstream(key.view(), zone, Priority::kRefresh, &p);
  if (sent == SendResult::kOverCap) return answer_stale(StaleReason::kOverCap);
  if (sent == SendResult::kUnavailable) return answer_stale(StaleReason::kBreaker);
  if (health == Health::kDegraded) return answer_stale(StaleReason::kFailure);  // refresh runs in the background
  p->waiters.push_back(MakeWaiter(to, q, query, true));
  ArmStaleTimer(*p, key.view(), zone, now);
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
    if (it->second->waiters.size() >= options_.max_waiters) return fail(counters_->waiters_overflow, dns::kEdeOther);
    Bump(counters_->coalesced);
    it->second->waiters.push_back(MakeWaiter(to, q, query, false));
    return Outcome::kPending;
  }
  if (pending_.size() >= options_.max_pending) return fail(counters_->pending_overflow, dns::kEdeOther);
  const upstream::Zone* zone = router_->Route(key.qname());
  if (zone == nullptr) return fail(counters_->no_route, dns::kEdeNoReachableAuthority);
  if (zone->upstream->health() == Health::kDown) {
    return fail(counters_->servfail_unreachable, dns::kEdeNoReachableAuthority);
  }
  Pending* p = nullptr;
  SendResult sent = StartUpstream(key.view(), zone, Priority::kClient, &p);
  if (sent == SendResult::kOverCap) return fail(counters_->servfail_local, dns::kEdeNoReachableAuthority);
  if (sent != SendResult::kSent) return fail(counters_->servfail_unreachable, dns::kEdeNoReachableAuthority);
  p->waiters.push_back(MakeWaiter(to, q, query, false));
  return Outcome::kPending;
}

SendResult Resolver::StartUpstream(std::string_view key, const upstream::Zone* zone, Priority priority,
                                   Pending** created) {
  // The client's CD and DO go upstream (both are part of the key).
  uint8_t buf[dns::kMaxQuerySize];
  size_t n = dns::WriteQuery(dns::CacheKeyQname(key), dns::CacheKeyQtype(key), dns::CacheKeyQclass(key), dns::CacheKeyCd(key), dns::CacheKeyDo(key), buf);

  std::string k(key);
  SendResult sent = zone->upstream->Send({buf, n}, priority,
                                         [this, k](const absl::Status& status, absl::Span<const uint8_t> answer) {
                                           OnUpstreamAnswer(k, status, answer);
                                         });
  if (sent != SendResult::kSent) return sent;
  if (priority == Priority::kRefresh) Bump(counters_->refreshes);
  auto p = std::make_unique<Pending>();
  p->zone = zone;
  p->refresh = priority == Priority::kRefresh;
  p->started_at = clock_->Now();
  *created = p.get();
  pending_.emplace(std::move(k), std::move(p));
  return sent;
}

void Resolver::MaybePrefetch(const dns::CacheKey& key, absl::Time now) {
  absl::Duration lifetime = hit_.expires_at - hit_.inserted_at;
  absl::Duration left = hit_.expires_at - now;
  if (left > lifetime * options_.prefetch_threshold || left <= absl::ZeroDuration()) return;
  absl::string_view k(key.view().data(), key.view().size());
  if (pending_.contains(k) || prefetch_scheduled_.contains(k)) return;
  // A jittered moment in the first half of what is left, so entries cached
  // together are not refreshed together.
  std::uniform_real_distribution<double> jitter(0.0, 0.5);
  absl::Time at = now + left * jitter(rng_);
  std::string owned(key.view());
  prefetch_scheduled_[owned] = timers_->Add(at, [this, owned] {
    prefetch_scheduled_.erase(owned);
    if (pending_.contains(owned)) return;
    const upstream::Zone* zone = router_->Route(dns::CacheKeyQname(owned));
    if (zone == nullptr || zone->upstream->health() != Health::kHealthy) return;
    Pending* p = nullptr;
    if (StartUpstream(owned, zone, Priority::kRefresh, &p) == SendResult::kSent) Bump(counters_->prefetches);
  });
}

void Resolver::OnStaleTimer(const std::string& key) {
  auto it = pending_.find(key);
  if (it == pending_.end()) return;
  const upstream::Zone* zone = it->second->zone;
  zone->upstream->ReportClientTimeout();
  // The zone is degraded now: nobody waiting on any of its refreshes should
  // wait out a timer of their own. Answer them all stale at once.
  std::vector<std::string> keys;
  for (auto& [k, p] : pending_) {
    if (p->zone == zone && (p->stale_timer || k == key)) keys.push_back(k);
  }
  // In a fixed order (a hash map's is not), so a run can be replayed.
  std::sort(keys.begin(), keys.end());
  for (const std::string& k : keys) FlushStaleWaiters(k);
}

void Resolver::FlushStaleWaiters(const std::string& key) {
  auto it = pending_.find(key);
  if (it == pending_.end()) return;
  Pending& p = *it->second;
  if (p.stale_timer) timers_->Cancel(p.stale_timer);
  p.stale_timer = 0;
  std::vector<Waiter> stale_ok, rest;
  for (Waiter& w : p.waiters) (w.stale_fallback ? stale_ok : rest).push_back(std::move(w));
  p.waiters = std::move(rest);
  if (stale_ok.empty()) return;
  if (!AnswerFromCache(key, stale_ok, StaleReason::kTimeout)) {
    // The entry is gone (evicted): they wait for the upstream like a miss.
    for (Waiter& w : stale_ok) p.waiters.push_back(std::move(w));
  }
}

bool Resolver::AnswerFromCache(std::string_view key, const std::vector<Waiter>& waiters, StaleReason reason) {
  cache::LookupStatus st = cache_->Lookup(key, clock_->Now(), entry_buf_.data(), entry_buf_.size(), &hit_);
  if (st == cache::LookupStatus::kMiss || hit_.kind == dns::AnswerKind::kServFail) return false;
  bool stale = st == cache::LookupStatus::kStale;
  for (const Waiter& w : waiters) {
    const uint8_t* query = reinterpret_cast<const uint8_t*>(w.prefix.data());
    std::memcpy(reply_buf_.data(), entry_buf_.data(), hit_.image_len);
    size_t n = stale ? AnswerStale(query, w.q, w.to.tcp, reply_buf_.data(), reply_buf_.size(), reason)
                     : AnswerFromHit(query, w.q, w.to.tcp, reply_buf_.data(), reply_buf_.size(), false, -1);
    if (n > 0) w.to.sink->SendReply(w.to, {reply_buf_.data(), n});
  }
  return true;
}

void Resolver::OnUpstreamAnswer(const std::string& key, const absl::Status& status,
                                absl::Span<const uint8_t> answer) {
  auto node = pending_.extract(key);
  if (node.empty()) return;  // cannot happen: one upstream query per key
  Pending& p = *node.mapped();
  if (p.stale_timer) timers_->Cancel(p.stale_timer);
  absl::Time now = clock_->Now();

  // Classify: anything but a well-formed NOERROR/NXDOMAIN for our question is
  // an upstream failure (RFC 8767 section 4).
  std::optional<dns::CacheImage> image;
  int ede = dns::kEdeNetworkError;
  if (upstream::IsLocalFailure(status)) {
    // Our own limits (or a shutdown) kept the query from the upstream: that
    // says nothing about the name or the upstream. Stale if we have it, else
    // SERVFAIL + EDE 22; nothing is cached and no recheck window starts.
    if (AnswerFromCache(key, p.waiters, StaleReason::kOverCap)) return;
    for (const Waiter& w : p.waiters) {
      uint8_t* out = reply_buf_.data();
      Bump(counters_->servfail_local);
      size_t n = Error(reinterpret_cast<const uint8_t*>(w.prefix.data()), w.prefix.size(), &w.q, dns::kServFail,
                       dns::kEdeNoReachableAuthority, out, reply_buf_.size());
      if (n > 0) w.to.sink->SendReply(w.to, {out, n});
    }
    return;
  }
  if (!status.ok()) {
    if (absl::IsDeadlineExceeded(status)) {
      Bump(counters_->upstream_timeouts);
      ede = dns::kEdeNoReachableAuthority;
    } else {
      Bump(counters_->upstream_errors);
    }
    if (spdlog::should_log(spdlog::level::debug)) spdlog::debug("upstream query failed: {}", status.ToString());
  } else if (auto msg = dns::ParseMessage(answer); !msg.ok()) {
    Bump(counters_->upstream_malformed);
  } else if (!(msg->flags & dns::kFlagQR) || msg->questions.size() != 1 ||
             !dns::NamesEqual(msg->questions[0].name, dns::CacheKeyQname(key)) || msg->questions[0].type != dns::CacheKeyQtype(key) ||
             msg->questions[0].klass != dns::CacheKeyQclass(key)) {
    Bump(counters_->upstream_mismatched);
  } else if (auto built = dns::BuildCacheImage(*msg, options_.ttl); !built.ok()) {
    Bump(counters_->upstream_malformed);
  } else {
    image = std::move(*built);
  }
  bool failed = !image || image->kind == dns::AnswerKind::kServFail || image->kind == dns::AnswerKind::kOther;
  if (failed) {
    if (image) Bump(counters_->upstream_servfail);
    if (p.refresh) Bump(counters_->refresh_failures);
    // Newer evidence wins: a query started before the zone's newest good
    // answer (one sent in an outage that ended meanwhile) says nothing now.
    bool outdated = p.started_at < p.zone->upstream->last_good_answer();
    // The window counts from when the failed query was sent: a good answer
    // from the zone after that is newer evidence (HandleStale).
    if (!outdated) cache_->MarkRefreshFailed(key, p.started_at);
    if (AnswerFromCache(key, p.waiters, StaleReason::kFailure)) return;
    // Nothing to fall back on: relay what upstream said (or SERVFAIL), and
    // remember the upstream's failure briefly so a failing upstream is not
    // asked again for every client query (RFC 2308 section 7, RFC 9520).
    AnswerWaiters(p.waiters, image ? &*image : nullptr, ede);
    if (options_.servfail_ttl > absl::ZeroDuration() && !outdated) {
      dns::Message sf;
      sf.flags = dns::kFlagQR | dns::kFlagRA | dns::kServFail;
      sf.questions.push_back({std::string(dns::CacheKeyQname(key)), dns::CacheKeyQtype(key), dns::CacheKeyQclass(key)});
      auto sf_image = dns::BuildCacheImage(sf, options_.ttl);
      if (sf_image.ok()) {
        sf_image->ttl = static_cast<uint32_t>(absl::ToInt64Seconds(options_.servfail_ttl));
        sf_image->cacheable = true;
        cache_->Insert(key, *sf_image, now);
      }
    }
    return;
  }
  Bump(counters_->upstream_answers);
  // Last known good: while the zone is unhealthy, a negative answer does not
  // replace a positive entry still within max_stale.
  if (p.zone->last_known_good && IsNegative(image->kind) && p.zone->upstream->recently_unhealthy()) {
    cache::LookupStatus st = cache_->Lookup(key, now, entry_buf_.data(), entry_buf_.size(), &hit_);
    if (st != cache::LookupStatus::kMiss && hit_.kind == dns::AnswerKind::kPositive &&
        now - hit_.inserted_at < p.zone->max_stale) {
      Bump(counters_->last_known_good_kept);
      AnswerFromCache(key, p.waiters, StaleReason::kFailure);
      return;
    }
  }
  if (image->cacheable && cache_->Insert(key, *image, now, p.zone->max_stale)) Bump(counters_->cache_inserts);
  AnswerWaiters(p.waiters, &*image, -1);
}

void Resolver::AnswerWaiters(const std::vector<Waiter>& waiters, const dns::CacheImage* image, int ede_on_failure) {
  uint8_t* out = reply_buf_.data();
  for (const Waiter& w : waiters) {
    const uint8_t* query = reinterpret_cast<const uint8_t*>(w.prefix.data());
    size_t n;
    if (image == nullptr) {
      n = Error(query, w.prefix.size(), &w.q, dns::kServFail, ede_on_failure, out, reply_buf_.size());
    } else {
      dns::RenderParams params = ParamsFor(w.q, w.to.tcp);
      bool truncated = false;
      std::memcpy(out, image->wire.data(), image->wire.size());
      n = dns::FinishAnswer(out, image->wire.size(), image->ttl_offsets, query, w.q, params, &truncated);
      CountAnswer(out, truncated);
    }
    if (n > 0) w.to.sink->SendReply(w.to, {out, n});
  }
}

}  // namespace nodedns::resolver
