#include "lib/resolver/resolver.h"

// The upstream side of the resolver: starting, resending and finishing
// upstream queries, answering their waiting clients, the stale timers, and
// prefetch. The client side (HandleQuery and its paths) is in resolver.cc.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "lib/dns/message.h"
#include "lib/dns/name.h"
#include "lib/dns/writers.h"

namespace nodedns::resolver {

using upstream::Health;
using upstream::Priority;
using upstream::SendResult;

namespace {

bool IsNegative(dns::AnswerKind k) { return k == dns::AnswerKind::kNxDomain || k == dns::AnswerKind::kNoData; }
// NOERROR (with data or NODATA) or NXDOMAIN: an answer, not a failure.
bool IsUsable(dns::AnswerKind k) { return k != dns::AnswerKind::kServFail && k != dns::AnswerKind::kOther; }

}  // namespace

void Resolver::ArmStaleTimer(Pending& p, absl::Time now) {
  if (p.stale_timer) return;
  p.stale_timer = timers_->Add(now + p.zone->upstream->client_timeout(),
                               [this, key = p.key, id = p.id] { OnStaleTimer(key, id); });
}

Resolver::Pending* Resolver::FindPending(const std::string& key, uint64_t id) {
  if (auto it = pending_.find(key); it != pending_.end() && it->second->id == id) return it->second.get();
  auto s = superseded_.find(id);
  return s == superseded_.end() ? nullptr : s->second.get();
}

std::unique_ptr<Resolver::Pending> Resolver::TakePending(const std::string& key, uint64_t id) {
  if (auto it = pending_.find(key); it != pending_.end() && it->second->id == id) {
    return std::move(pending_.extract(it).mapped());
  }
  auto node = superseded_.extract(id);
  return node.empty() ? nullptr : std::move(node.mapped());
}

SendResult Resolver::StartUpstream(std::string_view key, const upstream::Zone* zone, Priority priority,
                                   upstream::FlowId client, Pending** created) {
  // The client's CD and DO go upstream (both are part of the key).
  uint8_t buf[dns::kMaxQuerySize];
  size_t n = dns::WriteQuery(dns::CacheKeyQname(key), dns::CacheKeyQtype(key), dns::CacheKeyQclass(key), dns::CacheKeyCd(key), dns::CacheKeyDo(key), buf);

  std::string k(key);
  uint64_t id = next_pending_id_++;
  SendResult sent = zone->upstream->Send({buf, n}, priority, client,
                                         [this, k, id](const absl::Status& status, absl::Span<const uint8_t> answer) {
                                           OnUpstreamAnswer(k, id, status, answer);
                                         });
  if (sent != SendResult::kSent) return sent;
  if (priority == Priority::kRefresh) Bump(counters_->refreshes);
  auto p = std::make_unique<Pending>();
  p->zone = zone;
  p->refresh = priority == Priority::kRefresh;
  p->started_at = clock_->Now();
  p->id = id;
  p->key = k;
  p->client = client;
  if (client != upstream::kNoFlow) shares_.AddPending(client);
  *created = p.get();
  pending_.emplace(std::move(k), std::move(p));
  return sent;
}

void Resolver::Release(const Pending& p) {
  if (p.client != upstream::kNoFlow) shares_.RemovePending(p.client);
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
    if (StartUpstream(owned, zone, Priority::kRefresh, upstream::kNoFlow, &p) == SendResult::kSent) {
      Bump(counters_->prefetches);
    }
  });
}

bool Resolver::RefreshPinned(std::string_view key) {
  absl::string_view k(key.data(), key.size());
  if (pending_.contains(k)) return true;
  const upstream::Zone* zone = router_->Route(dns::CacheKeyQname(key));
  if (zone == nullptr || zone->upstream->health() == Health::kDown) return false;
  if (zone->filter_aaaa && dns::CacheKeyQtype(key) == dns::kTypeAAAA) return false;
  Pending* p = nullptr;
  if (StartUpstream(key, zone, Priority::kRefresh, upstream::kNoFlow, &p) != SendResult::kSent) return false;
  Bump(counters_->pin_refreshes);
  return true;
}

void Resolver::OnStaleTimer(const std::string& key, uint64_t id) {
  Pending* fired = FindPending(key, id);
  if (fired == nullptr) return;
  fired->stale_timer = 0;
  const upstream::Zone* zone = fired->zone;
  zone->upstream->ReportClientTimeout();
  // The zone is degraded now: nobody waiting on any of its refreshes should
  // wait out a timer of their own. Answer them all stale at once.
  std::vector<Pending*> flush;
  for (auto* map : {&pending_}) {
    for (auto& [k, p] : *map) {
      if (p->zone == zone && (p->stale_timer || p.get() == fired)) flush.push_back(p.get());
    }
  }
  for (auto& [i, p] : superseded_) {
    if (p->zone == zone && (p->stale_timer || p.get() == fired)) flush.push_back(p.get());
  }
  // In a fixed order (a hash map's is not), so a run can be replayed.
  std::sort(flush.begin(), flush.end(), [](const Pending* a, const Pending* b) { return a->id < b->id; });
  for (Pending* p : flush) FlushStaleWaiters(*p);
}

void Resolver::FlushStaleWaiters(Pending& p) {
  if (p.stale_timer) timers_->Cancel(p.stale_timer);
  p.stale_timer = 0;
  std::vector<Waiter> stale_ok, rest;
  for (Waiter& w : p.waiters) (w.stale_fallback ? stale_ok : rest).push_back(std::move(w));
  p.waiters = std::move(rest);
  if (stale_ok.empty()) return;
  if (!AnswerFromCache(p.key, stale_ok, StaleReason::kTimeout)) {
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
                     : AnswerFromHit(query, w.q, w.to.tcp, reply_buf_.data(), reply_buf_.size(), false);
    if (n > 0) w.to.sink->SendReply(w.to, {reply_buf_.data(), n});
  }
  return true;
}

Resolver::Pending* Resolver::ResendIfLost(std::string_view key, Pending* p, absl::Time /*now*/) {
  // Lost only if a later query came back promptly (UDP may reorder a little).
  static constexpr absl::Duration kReorderSlack = absl::Milliseconds(10);
  if (p->started_at + kReorderSlack >= p->zone->upstream->newest_prompt_send()) return p;
  auto old = pending_.extract(absl::string_view(key.data(), key.size()));
  Pending* fresh = nullptr;
  if (StartUpstream(key, old.mapped()->zone, old.mapped()->refresh ? Priority::kRefresh : Priority::kClient,
                    old.mapped()->client, &fresh) != SendResult::kSent) {
    auto back = pending_.insert(std::move(old));
    return back.position->second.get();
  }
  Bump(counters_->upstream_resent);
  // The clients already waiting keep waiting on their own query (their
  // waits stay bounded by it); whichever answer comes first is cached.
  uint64_t id = old.mapped()->id;
  superseded_.emplace(id, std::move(old.mapped()));
  return fresh;
}

std::optional<dns::CacheImage> Resolver::Classify(std::string_view key, const absl::Status& status,
                                                 absl::Span<const uint8_t> answer, int* ede) {
  // Anything but a well-formed NOERROR/NXDOMAIN for our question is an
  // upstream failure (RFC 8767 section 4).
  *ede = dns::kEdeNetworkError;
  if (!status.ok()) {
    if (absl::IsDeadlineExceeded(status)) {
      Bump(counters_->upstream_timeouts);
      *ede = dns::kEdeNoReachableAuthority;
    } else {
      Bump(counters_->upstream_errors);
    }
    if (spdlog::should_log(spdlog::level::debug)) spdlog::debug("upstream query failed: {}", status.ToString());
    return std::nullopt;
  }
  auto msg = dns::ParseMessage(answer);
  if (!msg.ok()) {
    Bump(counters_->upstream_malformed);
    return std::nullopt;
  }
  if (!(msg->flags & dns::kFlagQR) || msg->questions.size() != 1 ||
      !dns::NamesEqual(msg->questions[0].name, dns::CacheKeyQname(key)) ||
      msg->questions[0].type != dns::CacheKeyQtype(key) || msg->questions[0].klass != dns::CacheKeyQclass(key)) {
    Bump(counters_->upstream_mismatched);
    return std::nullopt;
  }
  auto built = dns::BuildCacheImage(*msg, options_.image);
  if (!built.ok()) {
    Bump(counters_->upstream_malformed);
    return std::nullopt;
  }
  return std::move(*built);
}

void Resolver::OnUpstreamAnswer(const std::string& key, uint64_t id, const absl::Status& status,
                                absl::Span<const uint8_t> answer) {
  std::unique_ptr<Pending> taken = TakePending(key, id);
  if (taken == nullptr) return;  // cannot happen: one callback per query
  Pending& p = *taken;
  Release(p);
  if (p.stale_timer) timers_->Cancel(p.stale_timer);
  absl::Time now = clock_->Now();

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
  int ede;
  std::optional<dns::CacheImage> image = Classify(key, status, answer, &ede);
  bool failed = !image || !IsUsable(image->kind);
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
      auto sf_image = dns::BuildCacheImage(sf, options_.image);
      if (sf_image.ok()) {
        sf_image->ttl = static_cast<uint32_t>(absl::ToInt64Seconds(options_.servfail_ttl));
        sf_image->cacheable = true;
        // Stored as of the failed query's send, like a refresh failure: a
        // good answer from the zone after that makes it outdated.
        cache_->InsertWithDeadlines(key, *sf_image, p.started_at, now + options_.servfail_ttl, now,
                                    absl::ZeroDuration());
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
  if (image->cacheable) cache_->Insert(key, *image, now, p.zone->max_stale);
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
