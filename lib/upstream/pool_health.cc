#include <spdlog/spdlog.h>

#include <algorithm>

#include "lib/upstream/pool.h"
#include "lib/upstream/pool_internal.h"

// UpstreamPool: what the servers have shown. Breakers, zone and breaker
// probes, the zone's health, reloads, status for dnsctl. Sending, the limit
// and the queue are in pool.cc.

namespace nodedns::upstream {

using pool_internal::IsDrop;
using pool_internal::IsGoodAnswer;

void UpstreamPool::LogState(Server& s, absl::Time now, const std::string& what) {
  uint64_t suppressed = 0;
  if (!s.log_limit.Allow(now, &suppressed)) return;
  if (suppressed > 0) {
    spdlog::warn("upstream {} ({}): {} ({} earlier state changes not logged)", s.name, options_.zone, what, suppressed);
  } else {
    spdlog::warn("upstream {} ({}): {}", s.name, options_.zone, what);
  }
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
    // Closed by an answer that proves nothing about the zone now (a probe's
    // retry answered after its deadline, a late answer to an old query):
    // the zone stays suspect and may be degraded for up to degraded_hold,
    // and no probe was left to end that (an open breaker's own probes stand
    // in for zone probes). One soon, at probe_min.
    if (!AnsweredSinceSuspicion()) {
      zone_probe_failures_ = 0;
      ScheduleZoneProbe(now);
    }
  }
}

void UpstreamPool::NotePrompt(absl::Time sent_at) {
  last_prompt_sent_ = std::max(last_prompt_sent_, sent_at);
  // A prompt answer to a query sent after the last suspicion: the zone
  // answers now, and probing it is over.
  if (AnsweredSinceSuspicion()) {
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

void UpstreamPool::Suspect(absl::Time now) {
  MarkBad(now);
  // The first suspicion of a zone that has never answered (a process started,
  // or a zone configured, during an outage): start small, where an outage's
  // recovery restarts, as TCP starts at one segment after a lost SYN (RFC
  // 5681). Its breakers are closed, and the queries that would open them
  // take seconds to fail; meanwhile the misses of a new process must not go
  // out initial_limit at a time, and its first answers ramp up at
  // slow-start speed as a recovery's do.
  if (last_good_at_ == absl::InfinitePast() && last_suspect_at_ == absl::InfinitePast()) {
    limiter_.OnRecovery(now);
    spdlog::debug("upstream ({}): suspect before any answer; limit {}", options_.zone, limiter_.limit());
  }
  last_suspect_at_ = now;
}

void UpstreamPool::OnFailure(size_t index, absl::Time now, bool drop) {
  Server& s = *servers_[index];
  Suspect(now);
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
    if (AnsweredSinceSuspicion()) return;
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
        Suspect(t);
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

void UpstreamPool::ReportClientTimeout() {
  // Degraded even when the refresh was still queued: the limit is full
  // because the upstream has not answered what is in flight, and clients are
  // better served stale at once until it does. Suspect: probe until a server
  // answers, so that a query that is merely late (or lost in an outage that
  // has already ended) does not decide when the zone counts as answering
  // again.
  absl::Time now = clock_->Now();
  Suspect(now);
  ScheduleZoneProbe(now);
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
  // A zone still suspect keeps being probed here, whether the old pool's
  // next probe was scheduled or in flight (its outcome goes to the old pool,
  // which no longer sends anything).
  if (last_suspect_at_ != absl::InfinitePast() && !AnsweredSinceSuspicion()) ScheduleZoneProbe(now);
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
  return {health(), limiter_.limit_value(), inflight_, queued(), limiter_.baseline_rtt(), last_good_at_, probing};
}

}  // namespace nodedns::upstream
