#include "lib/upstream/pool.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "lib/common/log_limiter.h"
#include "lib/dns/constants.h"
#include "lib/dns/name.h"
#include "lib/dns/query_view.h"

namespace nodedns::upstream {

struct UpstreamPool::Server {
  Server(const ServerSpec& spec, const BreakerOptions& b, uint32_t seed)
      : name(spec.name), transport(spec.transport), breaker(b, seed) {}
  std::string name;
  absl::Time last_good_sent = absl::InfinitePast();
  Transport* transport;
  CircuitBreaker breaker;
  TimerQueue::Id probe_timer = 0;
  uint64_t probe_generation = 0;  // answers to abandoned probes are ignored
  bool probe_inflight = false;
  // For dnsctl/metrics: client queries and refreshes sent, their failures,
  // and a smoothed round-trip time of good answers (as Unbound's srtt).
  uint64_t queries = 0;
  uint64_t failures = 0;
  absl::Duration srtt = absl::ZeroDuration();
  // A flapping server logs at most 4 state changes a minute.
  LogLimiter log_limit{absl::Seconds(60), 4};
};

struct UpstreamPool::Request {
  std::vector<uint8_t> query;
  Callback done;
  Priority priority;
  absl::Duration client_timeout;  // at send time: a slower answer means degraded
  uint32_t tried = 0;             // bit per server
  absl::Time sent_at;
  absl::Time deadline;            // while queued
  int inflight_at_send = 0;       // for the limiter: was the limit in use?
  // Counted against the limit until answered, or presumed lost (Forget).
  bool counted = false;
  bool keyed = false;  // `in_flight` points into in_flight_
  std::multimap<absl::Time, Request*>::iterator in_flight;
};

namespace {

// A usable answer: a response to our question with NOERROR or NXDOMAIN.
// Anything else (SERVFAIL, REFUSED, NOTIMP as RFC 8767 says, or garbage that
// happens to carry our ID) is a failure, and never evidence that the zone
// answers again.
bool IsGoodAnswer(absl::Span<const uint8_t> query, absl::Span<const uint8_t> answer) {
  if (!dns::IsAnswerTo(query, answer)) return false;
  uint16_t rcode = answer[3] & 0x0f;
  return rcode == dns::kNoError || rcode == dns::kNxDomain;
}

// No answer at all: the server (or the path to it) dropped the query.
bool IsDrop(const absl::Status& st) { return absl::IsDeadlineExceeded(st) || absl::IsUnavailable(st); }

std::vector<uint8_t> ProbeQuery(const std::string& zone) {
  auto wire = dns::NameFromText(zone);
  std::string name = wire.ok() ? *wire : std::string(1, '\0');
  std::vector<uint8_t> q(dns::kMaxQuerySize);
  q.resize(dns::WriteQuery(name, dns::kTypeSOA, dns::kClassIN, false, false, q.data()));
  return q;
}

}  // namespace

UpstreamPool::UpstreamPool(const PoolOptions& options, std::vector<ServerSpec> servers, const SteadyClock* clock,
                           TimerQueue* timers, Counters* counters, uint32_t seed)
    : options_(options), clock_(clock), timers_(timers), counters_(counters),
      probe_query_(ProbeQuery(options.zone)), limiter_(options.limiter), rng_(seed),
      tokens_(std::max(1.0, options.max_qps / 10.0)) {
  for (size_t i = 0; i < servers.size() && i < 32; ++i) {
    servers_.push_back(std::make_unique<Server>(servers[i], options.breaker, seed + static_cast<uint32_t>(i)));
  }
  // A new pool knows nothing of its servers: degraded until the first good
  // answer, and the first zone probe goes out soon, jittered.
  ScheduleZoneProbe(clock_->Now());
}

UpstreamPool::~UpstreamPool() {
  *alive_ = false;
  for (auto& s : servers_) {
    if (s->probe_timer) timers_->Cancel(s->probe_timer);
  }
  if (queue_timer_) timers_->Cancel(queue_timer_);
  if (zone_probe_timer_) timers_->Cancel(zone_probe_timer_);
}

void UpstreamPool::LogState(Server& s, absl::Time now, const std::string& what) {
  uint64_t suppressed = 0;
  if (!s.log_limit.Allow(now, &suppressed)) return;
  if (suppressed > 0) {
    spdlog::warn("upstream {} ({}): {} ({} earlier state changes not logged)", s.name, options_.zone, what, suppressed);
  } else {
    spdlog::warn("upstream {} ({}): {}", s.name, options_.zone, what);
  }
}

bool UpstreamPool::TakeToken(absl::Time now) {
  if (options_.max_qps <= 0) return true;
  double capacity = bucket_capacity();
  if (tokens_at_ != absl::InfinitePast()) {
    tokens_ = std::min(capacity, tokens_ + absl::ToDoubleSeconds(now - tokens_at_) * options_.max_qps);
  }
  tokens_at_ = now;
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

bool UpstreamPool::HasRoom(Priority priority, absl::Time now) const {
  size_t limit = static_cast<size_t>(limiter_.limit());
  if (inflight_ >= limit) return false;
  if (priority == Priority::kRefresh) {
    size_t share = std::max<size_t>(1, static_cast<size_t>(limit * options_.refresh_share));
    if (refresh_inflight_ >= share) return false;
    if (now < degraded_until_ && refresh_inflight_ >= static_cast<size_t>(options_.degraded_max_refreshes)) {
      return false;
    }
  }
  return true;
}

size_t UpstreamPool::NextServer(uint32_t tried) const {
  for (size_t i = 0; i < servers_.size(); ++i) {
    if (!(tried & (1u << i)) && servers_[i]->breaker.allows_traffic()) return i;
  }
  return servers_.size();
}

SendResult UpstreamPool::Send(absl::Span<const uint8_t> query, Priority priority, Callback done) {
  absl::Time now = clock_->Now();
  if (NextServer(0) == servers_.size()) return SendResult::kUnavailable;
  if (!TakeToken(now)) {
    Bump(counters_->upstream_refused_cap);
    return SendResult::kOverCap;
  }
  auto req = std::make_shared<Request>();
  req->query.assign(query.begin(), query.end());
  req->done = std::move(done);
  req->priority = priority;
  // FIFO within a priority, clients before refreshes.
  bool waiting_ahead = !queue_[0].empty() || (priority == Priority::kRefresh && !queue_[1].empty());
  if (!waiting_ahead && HasRoom(priority, now)) {
    Start(req, now);
    return SendResult::kSent;
  }
  // Over the limit: wait for room. A background refresh of a zone that is
  // not healthy has no client waiting for it: it is not worth a queue slot.
  if (queued() >= options_.max_queue || (priority == Priority::kRefresh && health() != Health::kHealthy)) {
    Bump(counters_->upstream_refused_cap);
    return SendResult::kOverCap;
  }
  req->deadline = now + options_.queue_timeout;
  queue_[static_cast<size_t>(priority)].push_back(std::move(req));
  Bump(counters_->upstream_queued);
  ArmQueueTimer();
  return SendResult::kSent;
}

void UpstreamPool::Start(const std::shared_ptr<Request>& req, absl::Time now) {
  req->client_timeout = client_timeout();
  ++inflight_;
  if (req->priority == Priority::kRefresh) ++refresh_inflight_;
  req->inflight_at_send = static_cast<int>(inflight_);
  req->counted = true;
  Dispatch(req, NextServer(0));
}

void UpstreamPool::Pump() {
  absl::Time now = clock_->Now();
  std::vector<std::pair<std::shared_ptr<Request>, absl::Status>> failed;
  for (auto& q : queue_) {
    while (!q.empty() && q.front()->deadline <= now) {
      Bump(counters_->upstream_queue_timeouts);
      failed.emplace_back(std::move(q.front()),
                          absl::ResourceExhaustedError("no room under the upstream concurrency limit (" +
                                                       std::to_string(limiter_.limit()) + ") within the queue timeout"));
      q.pop_front();
    }
  }
  while (true) {
    std::deque<std::shared_ptr<Request>>* q = nullptr;
    if (!queue_[0].empty() && HasRoom(Priority::kClient, now)) {
      q = &queue_[0];
    } else if (!queue_[1].empty() && HasRoom(Priority::kRefresh, now)) {
      q = &queue_[1];
    } else {
      break;
    }
    std::shared_ptr<Request> req = std::move(q->front());
    q->pop_front();
    if (NextServer(0) == servers_.size()) {
      failed.emplace_back(std::move(req), absl::ResourceExhaustedError("every server's breaker opened while queued"));
      continue;
    }
    Start(req, now);
  }
  ArmQueueTimer();
  std::weak_ptr<bool> alive = alive_;
  for (auto& [req, st] : failed) {
    if (alive.expired()) return;
    req->done(st, {});
  }
}

void UpstreamPool::ArmQueueTimer() {
  absl::Time next = absl::InfiniteFuture();
  for (const auto& q : queue_) {
    if (!q.empty()) next = std::min(next, q.front()->deadline);
  }
  if (next == queue_timer_at_) return;
  if (queue_timer_) timers_->Cancel(queue_timer_);
  queue_timer_ = 0;
  queue_timer_at_ = next;
  if (next == absl::InfiniteFuture()) return;
  queue_timer_ = timers_->Add(next, [this] {
    queue_timer_ = 0;
    queue_timer_at_ = absl::InfiniteFuture();
    Pump();
  });
}

void UpstreamPool::CancelQueued() {
  std::vector<std::shared_ptr<Request>> cancelled;
  for (auto& q : queue_) {
    for (auto& r : q) cancelled.push_back(std::move(r));
    q.clear();
  }
  ArmQueueTimer();
  for (auto& r : cancelled) r->done(absl::CancelledError("upstream generation closed"), {});
}

void UpstreamPool::Uncount(Request& req) {
  if (!req.counted) return;
  req.counted = false;
  if (req.keyed) in_flight_.erase(req.in_flight);
  req.keyed = false;
  --inflight_;
  if (req.priority == Priority::kRefresh) --refresh_inflight_;
}

void UpstreamPool::ForgetLostBefore(absl::Time sent_before) {
  // A later query has come back and these have not: after an outage that
  // has ended, queries sent into it would hold the limit until their timeout
  // (seconds) while the upstream answers again. They still complete (or
  // time out) and are handled then; they no longer count against the limit.
  while (!in_flight_.empty() && in_flight_.begin()->first < sent_before) {
    Uncount(*in_flight_.begin()->second);
    Bump(counters_->upstream_presumed_lost);
  }
}

void UpstreamPool::Dispatch(const std::shared_ptr<Request>& req, size_t index) {
  req->tried |= 1u << index;
  req->sent_at = clock_->Now();
  if (req->counted) {  // (re)keyed by its newest send: a failover is a new send
    if (req->keyed) in_flight_.erase(req->in_flight);
    req->in_flight = in_flight_.emplace(req->sent_at, req.get());
    req->keyed = true;
  }
  Bump(counters_->upstream_queries);
  ++servers_[index]->queries;
  std::weak_ptr<bool> alive = alive_;
  servers_[index]->transport->Send(req->query, [this, alive, req, index](const absl::Status& st,
                                                                         absl::Span<const uint8_t> answer) {
    if (alive.expired()) return;
    OnResult(req, index, st, answer);
  });
}

void UpstreamPool::OnResult(const std::shared_ptr<Request>& req, size_t index, const absl::Status& status,
                            absl::Span<const uint8_t> answer) {
  absl::Time now = clock_->Now();
  bool cancelled = absl::IsCancelled(status);
  bool failed = !cancelled && (!status.ok() || !IsGoodAnswer(req->query, answer));
  // Newer evidence wins: a failure (or slow answer) for a query sent before
  // the newest good answer says nothing about the server now. Without this,
  // queries sent during an outage that time out after recovery would degrade
  // the zone again, or even reopen the breaker.
  bool outdated = req->sent_at < servers_[index]->last_good_sent;
  if (failed) {
    ++servers_[index]->failures;
    if (!outdated) OnFailure(index, now, IsDrop(status));
    // Fail over to the next server whose breaker is closed and that this
    // query has not tried yet.
    if (size_t next = NextServer(req->tried); next < servers_.size()) {
      Bump(counters_->upstream_failovers);
      Dispatch(req, next);
      return;
    }
  } else if (!cancelled) {
    Server& s = *servers_[index];
    OnGood(s, now);
    absl::Duration rtt = now - req->sent_at;
    s.srtt = s.srtt == absl::ZeroDuration() ? rtt : (s.srtt * 7 + rtt) / 8;
    // Slow answers are congestion evidence too: the limiter sees every one.
    limiter_.OnSample(rtt, req->inflight_at_send, now);
    if (rtt > req->client_timeout) {
      // Good but later than a client would wait: RFC 8767's client response
      // timer was missed, so the zone is degraded (stale goes out at once).
      // Not a latency sample: slow answers (c-ares retries, an overloaded
      // upstream) would raise the adaptive timeout and make clients wait.
      if (!outdated) MarkBad(now);
    } else {
      s.last_good_sent = std::max(s.last_good_sent, req->sent_at);
      NotePrompt(req->sent_at);
      // A prompt good answer to a query sent after the last bad event: the
      // zone is healthy again now, not when the hold runs out.
      if (req->sent_at > last_bad_at_ && degraded_until_ > now) {
        spdlog::debug("upstream {} ({}): prompt answer, no longer degraded", s.name, options_.zone);
        degraded_until_ = absl::InfinitePast();
      }
      RecordLatency(rtt);
      // Queries sent well before this one and still out are presumed lost.
      ForgetLostBefore(req->sent_at - (kReorderSlack + 2 * limiter_.baseline_rtt()));
    }
  }
  Uncount(*req);
  std::weak_ptr<bool> alive = alive_;
  req->done(status, answer);
  if (!alive.expired()) Pump();
}

void UpstreamPool::OnGood(Server& s, absl::Time now) {
  last_good_at_ = std::max(last_good_at_, now);
  // The first good answer of a new pool: it is not "unknown" any more (a slow
  // answer may still degrade it, for degraded_hold).
  if (degraded_until_ == absl::InfiniteFuture()) degraded_until_ = absl::InfinitePast();
  if (s.breaker.OnSuccess(now)) {
    Bump(counters_->breaker_closed);
    LogState(s, now, "breaker closed, answering again");
    // Ramp up again from a small limit (slow start): thousands of nodes
    // coming back together must not stampede a recovering server.
    limiter_.OnRecovery(now);
  }
}

void UpstreamPool::NotePrompt(absl::Time sent_at) {
  last_prompt_sent_ = std::max(last_prompt_sent_, sent_at);
  // A prompt answer to a query sent after the last suspicion: the zone
  // answers now, and probing it is over.
  if (last_prompt_sent_ > last_suspect_at_) {
    if (zone_probe_timer_) timers_->Cancel(zone_probe_timer_);
    zone_probe_timer_ = 0;
    zone_probe_failures_ = 0;
  }
}

void UpstreamPool::MarkBad(absl::Time now) {
  if (degraded_until_ <= now) spdlog::debug("upstream ({}): degraded", options_.zone);
  last_bad_at_ = now;
  degraded_until_ = std::max(degraded_until_, now + options_.degraded_hold);
}

void UpstreamPool::OnFailure(size_t index, absl::Time now, bool drop) {
  Server& s = *servers_[index];
  MarkBad(now);
  last_suspect_at_ = now;
  if (drop) limiter_.OnDrop(now);
  if (s.breaker.OnFailure(now)) {
    Bump(counters_->breaker_opened);
    LogState(s, now, "breaker open after " + std::to_string(s.breaker.consecutive_failures()) +
                         " consecutive failures; probing");
    ScheduleProbe(index);
  }
  ScheduleZoneProbe(now);
}

void UpstreamPool::ScheduleZoneProbe(absl::Time now) {
  if (zone_probe_timer_) return;
  // The same backoff as an open breaker's, jittered into its upper half
  // (the first one, at start-up, anywhere within probe_min).
  absl::Duration interval = servers_.empty() ? options_.breaker.probe_min
                                             : servers_[0]->breaker.Interval(zone_probe_failures_);
  std::uniform_real_distribution<double> jitter(last_good_at_ == absl::InfinitePast() ? 0.0 : 0.5, 1.0);
  zone_probe_timer_ = timers_->Add(now + interval * jitter(rng_), [this] {
    zone_probe_timer_ = 0;
    // Recovered meanwhile (a query sent after the suspicion was answered
    // promptly): nothing to probe. A slow answer to an old query is no proof.
    if (last_prompt_sent_ > last_suspect_at_) return;
    size_t i = NextServer(0);
    if (i == servers_.size()) return;  // every breaker is open: their own probes run
    SendProbe(i, /*zone_probe=*/true);
  });
}

void UpstreamPool::ScheduleProbe(size_t index) {
  Server& s = *servers_[index];
  if (s.probe_timer) timers_->Cancel(s.probe_timer);
  s.probe_timer = timers_->Add(s.breaker.next_probe(), [this, index] {
    servers_[index]->probe_timer = 0;  // the destructor cancels this timer
    SendProbe(index, /*zone_probe=*/false);
  });
}

void UpstreamPool::SendProbe(size_t index, bool zone_probe) {
  Server& s = *servers_[index];
  if (s.breaker.allows_traffic() != zone_probe) return;
  absl::Time now = clock_->Now();
  if (s.probe_inflight) {  // the other kind of probe is out: its outcome reschedules this one
    if (zone_probe) ScheduleZoneProbe(now);
    return;
  }
  if (!zone_probe) s.breaker.ProbeSent(now);
  uint64_t generation = ++s.probe_generation;
  s.probe_inflight = true;
  Bump(zone_probe ? counters_->zone_probes_sent : counters_->probes_sent);
  spdlog::debug("upstream {} ({}): {} sent", s.name, options_.zone, zone_probe ? "zone probe" : "probe");
  // The probe gets its own short deadline, so a blackholed server is probed
  // again within about probe_max whatever the transport's timeout.
  std::weak_ptr<bool> alive = alive_;
  auto failed = [this, index, zone_probe](absl::Time t, const absl::Status& st) {
    if (zone_probe) {
      ++zone_probe_failures_;
      if (absl::IsDeadlineExceeded(st)) {
        // No answer within probe_timeout: blackholed, or merely slow. Still
        // suspect, but no breaker failure: a slow upstream should keep
        // answering misses (late), not have its breaker opened by probes.
        MarkBad(t);
        last_suspect_at_ = t;
        ScheduleZoneProbe(t);
      } else {
        OnFailure(index, t, IsDrop(st));  // an answer that fails, or refused: counts toward the breaker
      }
    } else {
      servers_[index]->breaker.OnFailure(t);
    }
    // Whatever kind of probe failed, an open breaker keeps probing (a breaker
    // probe that fell due while this one was out was skipped).
    if (!servers_[index]->breaker.allows_traffic()) ScheduleProbe(index);
  };
  timers_->Add(now + options_.probe_timeout, [this, alive, index, generation, failed] {
    if (alive.expired()) return;
    Server& srv = *servers_[index];
    if (srv.probe_generation != generation || !srv.probe_inflight) return;
    srv.probe_inflight = false;
    ++srv.probe_generation;
    spdlog::debug("upstream {} ({}): probe timed out", srv.name, options_.zone);
    failed(clock_->Now(), absl::DeadlineExceededError("probe timeout"));
  });
  s.transport->Send(probe_query_, [this, alive, index, generation, failed, now](const absl::Status& st,
                                                                                absl::Span<const uint8_t> answer) {
    if (alive.expired()) return;
    Server& srv = *servers_[index];
    if (absl::IsCancelled(st)) return;
    absl::Time t = clock_->Now();
    if (srv.probe_generation != generation) {
      // An abandoned probe (past probe_timeout; c-ares kept retrying): its
      // failure says nothing new, but an answer is evidence like any other.
      if (st.ok() && IsGoodAnswer(probe_query_, answer)) OnGood(srv, t);
      spdlog::trace("upstream {}: late probe answer (generation {} now {})", srv.name, generation,
                    srv.probe_generation);
      return;
    }
    srv.probe_inflight = false;
    uint16_t rcode = answer.size() >= dns::kHeaderSize ? (answer[3] & 0x0f) : 0xffff;
    if (st.ok() && IsGoodAnswer(probe_query_, answer)) {
      OnGood(srv, t);
      // The server answers again: failures of queries sent before this
      // probe are outdated, the zone is not degraded by them any more, and
      // stale entries are refreshed on demand at once (under the limits).
      srv.last_good_sent = std::max(srv.last_good_sent, now);
      NotePrompt(now);
      if (now > last_bad_at_) degraded_until_ = absl::InfinitePast();
      ForgetLostBefore(now - (kReorderSlack + 2 * limiter_.baseline_rtt()));
      Pump();
    } else {
      spdlog::debug("upstream {} ({}): probe failed: {} rcode {}", srv.name, options_.zone, st.ToString(), rcode);
      failed(t, st.ok() ? absl::InternalError("SERVFAIL, REFUSED or not an answer") : st);
    }
  });
}

Health UpstreamPool::health() const {
  if (NextServer(0) == servers_.size()) return Health::kDown;
  if (clock_->Now() < degraded_until_) return Health::kDegraded;
  return Health::kHealthy;
}

void UpstreamPool::ReportClientTimeout() {
  // Even when the refresh was still queued: the limit is full because the
  // upstream has not answered what is in flight, and clients are better served
  // stale at once until it does.
  absl::Time now = clock_->Now();
  MarkBad(now);
  // Suspect: probe until a server answers, so that a query that is merely
  // late (or lost in an outage that has already ended) does not decide when
  // the zone counts as answering again.
  last_suspect_at_ = now;
  ScheduleZoneProbe(now);
}

absl::Duration UpstreamPool::p99_latency() const {
  if (latency_.empty()) return absl::ZeroDuration();
  std::vector<absl::Duration> v = latency_;
  size_t k = std::min(v.size() - 1, v.size() * 99 / 100);
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

void UpstreamPool::RecordLatency(absl::Duration rtt) {
  if (latency_.size() < kSamples) {
    latency_.push_back(rtt);
  } else {
    latency_[latency_next_] = rtt;
    latency_next_ = (latency_next_ + 1) % kSamples;
  }
  if (++samples_since_recompute_ >= kRecomputeEvery || latency_.size() == 16) {
    samples_since_recompute_ = 0;
    adaptive_timeout_ =
        std::clamp(p99_latency() * options_.adaptive_factor, options_.adaptive_min, options_.adaptive_max);
  }
}

absl::Duration UpstreamPool::client_timeout() const {
  if (options_.client_timeout > absl::ZeroDuration()) return options_.client_timeout;
  // Too few samples to trust.
  if (latency_.size() < 16) return options_.initial_client_timeout;
  return adaptive_timeout_;
}

void UpstreamPool::AdoptState(const UpstreamPool& previous) {
  bool any = false;
  absl::Time now = clock_->Now();
  for (size_t i = 0; i < servers_.size(); ++i) {
    Server& s = *servers_[i];
    for (const auto& old : previous.servers_) {
      if (old->name != s.name) continue;
      any = true;
      s.breaker.AdoptState(old->breaker);
      s.last_good_sent = old->last_good_sent;
      s.queries = old->queries;
      s.failures = old->failures;
      s.srtt = old->srtt;
      if (!s.breaker.allows_traffic()) ScheduleProbe(i);  // an open breaker keeps probing
    }
  }
  if (!any) return;  // new servers only: nothing learnt applies
  latency_ = previous.latency_;
  latency_next_ = previous.latency_next_;
  samples_since_recompute_ = previous.samples_since_recompute_;
  adaptive_timeout_ = previous.adaptive_timeout_;
  degraded_until_ = previous.degraded_until_;
  last_bad_at_ = previous.last_bad_at_;
  last_good_at_ = previous.last_good_at_;
  last_suspect_at_ = previous.last_suspect_at_;
  last_prompt_sent_ = previous.last_prompt_sent_;
  zone_probe_failures_ = previous.zone_probe_failures_;
  limiter_.AdoptState(previous.limiter_);
  tokens_ = previous.tokens_;
  tokens_at_ = previous.tokens_at_;
  // The start-up probe is for a pool that knows nothing; this one knows.
  if (zone_probe_timer_) timers_->Cancel(zone_probe_timer_);
  zone_probe_timer_ = 0;
  if (previous.zone_probe_timer_ != 0) ScheduleZoneProbe(now);
}

std::vector<ServerStatus> UpstreamPool::servers() const {
  std::vector<ServerStatus> out;
  for (const auto& s : servers_) {
    out.push_back({s->name, s->breaker.state(), s->breaker.state_since(), s->breaker.transitions(),
                   s->breaker.consecutive_failures(), s->queries, s->failures, s->srtt});
  }
  return out;
}

ZoneStatus UpstreamPool::zone_status() const {
  bool probing = true;
  for (const auto& s : servers_) {
    if (!s->breaker.allows_traffic() && s->probe_timer == 0 && !s->probe_inflight) probing = false;
  }
  return {health(), limiter_.limit(), inflight_, queued(), limiter_.baseline_rtt(), last_good_at_, probing};
}

}  // namespace nodedns::upstream
