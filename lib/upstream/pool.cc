#include "lib/upstream/pool.h"
#include "lib/upstream/pool_internal.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/str_format.h"
#include "lib/common/log_limiter.h"
#include "lib/dns/constants.h"
#include "lib/dns/name.h"
#include "lib/dns/query_view.h"

namespace nodedns::upstream {

using pool_internal::IsDrop;
using pool_internal::IsGoodAnswer;
using pool_internal::ProbeQuery;


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
  // Below one query in flight: one at a time, a pacing gap apart.
  if (limiter_.pacing() && now < next_paced_start_) return false;
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

SendResult UpstreamPool::Send(absl::Span<const uint8_t> query, Priority priority, FlowId flow, Callback done) {
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
  req->flow = options_.fair_queue ? flow : kNoFlow;  // one flow: plain FIFO
  // Nobody overtakes a waiting client; clients before refreshes.
  bool waiting_ahead = !client_queue_.empty() || (priority == Priority::kRefresh && !refresh_queue_.empty());
  if (!waiting_ahead && HasRoom(priority, now)) {
    Start(req, now);
    return SendResult::kSent;
  }
  // Over the limit: wait for room. A background refresh of a zone that is
  // not healthy has no client waiting for it: it is not worth a queue slot.
  bool refused = priority == Priority::kRefresh
                     ? queued() >= options_.max_queue || health() != Health::kHealthy
                     : queued() >= options_.max_queue && !PushOutFor(req->flow);
  if (refused) {
    Bump(counters_->upstream_refused_cap);
    return SendResult::kOverCap;
  }
  req->deadline = now + options_.queue_timeout;
  if (priority == Priority::kRefresh) {
    refresh_queue_.push_back(std::move(req));
  } else {
    FlowId flow = req->flow;
    absl::Time deadline = req->deadline;  // read before the move (argument order is unspecified)
    client_queue_.Push(flow, deadline, std::move(req));
  }
  Bump(counters_->upstream_queued);
  ArmQueueTimer();
  return SendResult::kSent;
}

bool UpstreamPool::PushOutFor(FlowId flow) {
  if (queued() == 0) return false;  // max_queue 0: nothing ever waits
  if (!refresh_queue_.empty()) {
    pushed_out_.push_back(std::move(refresh_queue_.back()));
    refresh_queue_.pop_back();
  } else {
    std::optional<FlowId> longest = client_queue_.longest();
    // Only for a client that would hold fewer than the longest after it:
    // a flood does not push out its own queries, nor a quiet client's.
    if (!longest || *longest == flow || client_queue_.flow_size(*longest) <= client_queue_.flow_size(flow) + 1) {
      return false;
    }
    pushed_out_.push_back(client_queue_.PopNewest(*longest));
  }
  Bump(counters_->fair_share_pushed_out);
  return true;
}

void UpstreamPool::Start(const std::shared_ptr<Request>& req, absl::Time now) {
  if (limiter_.pacing()) {
    next_paced_start_ = now + limiter_.pacing_gap();
    Bump(counters_->upstream_paced);
  }
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
  for (auto& req : pushed_out_) {
    failed.emplace_back(std::move(req), absl::ResourceExhaustedError(
                                            "pushed out of the full upstream queue by another client's query"));
  }
  pushed_out_.clear();
  auto timed_out = [&](std::shared_ptr<Request> req) {
    Bump(counters_->upstream_queue_timeouts);
    failed.emplace_back(std::move(req),
                        absl::ResourceExhaustedError("no room under the upstream concurrency limit (" +
                                                     absl::StrFormat("%.2f", limiter_.limit_value()) +
                                                     ") within the queue timeout"));
  };
  while (auto req = client_queue_.PopExpired(now)) timed_out(std::move(*req));
  while (!refresh_queue_.empty() && refresh_queue_.front()->deadline <= now) {
    timed_out(std::move(refresh_queue_.front()));
    refresh_queue_.pop_front();
  }
  while (true) {
    std::shared_ptr<Request> req;
    if (!client_queue_.empty() && HasRoom(Priority::kClient, now)) {
      req = client_queue_.PopNext();  // round robin between clients
    } else if (client_queue_.empty() && !refresh_queue_.empty() && HasRoom(Priority::kRefresh, now)) {
      req = std::move(refresh_queue_.front());
      refresh_queue_.pop_front();
    } else {
      break;
    }
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
  absl::Time next = client_queue_.next_deadline();
  if (!refresh_queue_.empty()) next = std::min(next, refresh_queue_.front()->deadline);
  if (!pushed_out_.empty()) next = clock_->Now();  // fail them at once, outside Send()
  // Paced, nothing in flight (no answer will pump the queue): start the
  // next one when its gap has passed.
  if (limiter_.pacing() && inflight_ == 0 && queued() > 0) next = std::min(next, next_paced_start_);
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
  std::vector<std::shared_ptr<Request>> cancelled = std::move(pushed_out_);
  pushed_out_.clear();
  for (auto& r : client_queue_.TakeAll()) cancelled.push_back(std::move(r));
  for (auto& r : refresh_queue_) cancelled.push_back(std::move(r));
  refresh_queue_.clear();
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
    // From the kernel's receive time where the transport knows it: our own
    // loop's delays under load are not the upstream's latency.
    AnswerTiming timing = s.transport->last_answer();
    absl::Time arrived = timing.received != absl::InfinitePast() && timing.received <= now ? timing.received : now;
    // What the client waited, and the round trip of the attempt answered.
    absl::Duration rtt = arrived - req->sent_at;
    absl::Duration attempt_rtt =
        timing.sent >= req->sent_at && timing.sent <= arrived ? arrived - timing.sent : rtt;
    s.srtt = s.srtt == absl::ZeroDuration() ? attempt_rtt : (s.srtt * 7 + attempt_rtt) / 8;
    // Slow answers are congestion evidence too: the limiter sees every one.
    // The round trip of the attempt answered is a sample like any other
    // (unambiguous: Karn's algorithm), and says what the latency is now.
    limiter_.OnSample(attempt_rtt, req->inflight_at_send, now);
    if (timing.earlier_attempts > 0) {
      // Only the retry was answered: the first attempt was lost. A server
      // that drops under load shows it this way first, since the retry
      // mostly saves the query; as latency alone it would cut the limit no
      // lower than limit_min. After the sample, so that a prompt retry
      // answer does not undo the loss.
      Bump(counters_->upstream_retry_answered);
      limiter_.OnLoss(req->sent_at, now);
    }
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

Health UpstreamPool::health() const {
  if (NextServer(0) == servers_.size()) return Health::kDown;
  if (clock_->Now() < degraded_until_) return Health::kDegraded;
  return Health::kHealthy;
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

}  // namespace nodedns::upstream
