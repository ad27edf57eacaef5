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
  uint32_t tried = 0;  // bit per server
  absl::Time sent_at;
};

namespace {

// rcodes that count as a server failure (RFC 8767: SERVFAIL, REFUSED, NOTIMP).
bool IsFailureRcode(absl::Span<const uint8_t> answer) {
  if (answer.size() < dns::kHeaderSize) return true;
  uint16_t rcode = answer[3] & 0x0f;
  return rcode == dns::kServFail || rcode == dns::kRefused || rcode == dns::kNotImp;
}

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
      probe_query_(ProbeQuery(options.zone)), tokens_(std::max(1.0, options.max_qps / 10.0)) {
  for (size_t i = 0; i < servers.size() && i < 32; ++i) {
    servers_.push_back(std::make_unique<Server>(servers[i], options.breaker, seed + static_cast<uint32_t>(i)));
  }
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

UpstreamPool::~UpstreamPool() {
  *alive_ = false;
  for (auto& s : servers_) {
    if (s->probe_timer) timers_->Cancel(s->probe_timer);
  }
}

bool UpstreamPool::Admit(Priority priority, absl::Time now) {
  double share = priority == Priority::kClient ? 1.0 : options_.refresh_share;
  if (options_.max_inflight > 0 && static_cast<double>(inflight_) >= options_.max_inflight * share) return false;
  if (priority == Priority::kRefresh && now < degraded_until_ &&
      refresh_inflight_ >= static_cast<size_t>(options_.degraded_max_refreshes)) {
    return false;
  }
  if (options_.max_qps > 0) {
    double capacity = bucket_capacity();
    if (tokens_at_ != absl::InfinitePast()) {
      tokens_ = std::min(capacity, tokens_ + absl::ToDoubleSeconds(now - tokens_at_) * options_.max_qps);
    }
    tokens_at_ = now;
    // A refresh must leave (1 - share) of the bucket for client misses.
    double floor = priority == Priority::kClient ? 0.0 : capacity * (1.0 - share);
    if (tokens_ < floor + 1.0) return false;
    tokens_ -= 1.0;
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
  size_t first = NextServer(0);
  if (first == servers_.size()) return SendResult::kUnavailable;
  if (!Admit(priority, now)) {
    Bump(counters_->upstream_refused_cap);
    return SendResult::kOverCap;
  }
  auto req = std::make_shared<Request>();
  req->query.assign(query.begin(), query.end());
  req->done = std::move(done);
  req->priority = priority;
  req->client_timeout = client_timeout();
  ++inflight_;
  if (priority == Priority::kRefresh) ++refresh_inflight_;
  Dispatch(req, first);
  return SendResult::kSent;
}

void UpstreamPool::Dispatch(const std::shared_ptr<Request>& req, size_t index) {
  req->tried |= 1u << index;
  req->sent_at = clock_->Now();
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
  bool failed = !cancelled && (!status.ok() || IsFailureRcode(answer));
  // Newer evidence wins: a failure (or slow answer) for a query sent before
  // the newest good answer says nothing about the server now. Without this,
  // queries sent during an outage that time out after recovery would degrade
  // the zone again, or even reopen the breaker.
  bool outdated = req->sent_at < servers_[index]->last_good_sent;
  if (failed) {
    ++servers_[index]->failures;
    if (!outdated) OnFailure(index, now);
    // Fail over to the next server whose breaker is closed and that this
    // query has not tried yet.
    if (size_t next = NextServer(req->tried); next < servers_.size()) {
      Bump(counters_->upstream_failovers);
      Dispatch(req, next);
      return;
    }
  } else if (!cancelled) {
    Server& s = *servers_[index];
    if (s.breaker.OnSuccess(now)) {
      Bump(counters_->breaker_closed);
      LogState(s, now, "breaker closed, answering again");
    }
    absl::Duration rtt = now - req->sent_at;
    s.srtt = s.srtt == absl::ZeroDuration() ? rtt : (s.srtt * 7 + rtt) / 8;
    if (rtt > req->client_timeout) {
      // Good but later than a client would wait: RFC 8767's client response
      // timer was missed, so the zone is degraded (stale goes out at once).
      // Not a latency sample: slow answers (c-ares retries, an overloaded
      // upstream) would raise the adaptive timeout and make clients wait.
      if (!outdated) MarkBad(now);
    } else {
      s.last_good_sent = std::max(s.last_good_sent, req->sent_at);
      // A prompt good answer to a query sent after the last bad event: the
      // zone is healthy again now, not when the hold runs out.
      if (req->sent_at > last_bad_at_ && degraded_until_ > now) {
        spdlog::debug("upstream {} ({}): prompt answer, no longer degraded", s.name, options_.zone);
        degraded_until_ = absl::InfinitePast();
      }
      RecordLatency(rtt);
    }
  }
  --inflight_;
  if (req->priority == Priority::kRefresh) --refresh_inflight_;
  req->done(status, answer);
}

void UpstreamPool::MarkBad(absl::Time now) {
  if (degraded_until_ <= now) spdlog::debug("upstream ({}): degraded", options_.zone);
  last_bad_at_ = now;
  degraded_until_ = now + options_.degraded_hold;
}

void UpstreamPool::OnFailure(size_t index, absl::Time now) {
  Server& s = *servers_[index];
  MarkBad(now);
  if (s.breaker.OnFailure(now)) {
    Bump(counters_->breaker_opened);
    LogState(s, now, "breaker open after " + std::to_string(s.breaker.consecutive_failures()) +
                         " consecutive failures; probing");
    ScheduleProbe(index);
  }
}

void UpstreamPool::ScheduleProbe(size_t index) {
  Server& s = *servers_[index];
  if (s.probe_timer) timers_->Cancel(s.probe_timer);
  s.probe_timer = timers_->Add(s.breaker.next_probe(), [this, index] {
    servers_[index]->probe_timer = 0;  // the destructor cancels this timer
    SendProbe(index);
  });
}

void UpstreamPool::SendProbe(size_t index) {
  Server& s = *servers_[index];
  if (s.breaker.allows_traffic()) return;
  absl::Time now = clock_->Now();
  s.breaker.ProbeSent(now);
  uint64_t generation = ++s.probe_generation;
  s.probe_inflight = true;
  Bump(counters_->probes_sent);
  spdlog::debug("upstream {} ({}): probe sent", s.name, options_.zone);
  // The probe gets its own short deadline, so a blackholed server is probed
  // again within about probe_max whatever the transport's timeout.
  std::weak_ptr<bool> alive = alive_;
  timers_->Add(now + options_.probe_timeout, [this, alive, index, generation] {
    if (alive.expired()) return;
    Server& srv = *servers_[index];
    if (srv.probe_generation != generation || !srv.probe_inflight) return;
    srv.probe_inflight = false;
    ++srv.probe_generation;
    spdlog::debug("upstream {} ({}): probe timed out", srv.name, options_.zone);
    srv.breaker.OnFailure(clock_->Now());
    ScheduleProbe(index);
  });
  s.transport->Send(probe_query_, [this, alive, index, generation](const absl::Status& st,
                                                                    absl::Span<const uint8_t> answer) {
    if (alive.expired()) return;
    Server& srv = *servers_[index];
    if (srv.probe_generation != generation || absl::IsCancelled(st)) {
      spdlog::trace("upstream {}: probe answer ignored (generation {} now {})", srv.name, generation,
                    srv.probe_generation);
      return;
    }
    srv.probe_inflight = false;
    absl::Time t = clock_->Now();
    uint16_t rcode = answer.size() >= dns::kHeaderSize ? (answer[3] & 0x0f) : 0xffff;
    if (st.ok() && (rcode == dns::kNoError || rcode == dns::kNxDomain)) {
      if (srv.breaker.OnSuccess(t)) {
        Bump(counters_->breaker_closed);
        LogState(srv, t, "probe answered, breaker closed");
        // The server answers again: stale entries are refreshed on demand at
        // once (under the caps), so fresh answers flow within a probe interval.
        last_recovery_ = t;
        srv.last_good_sent = t;
        degraded_until_ = absl::InfinitePast();
      }
    } else {
      spdlog::debug("upstream {} ({}): probe failed: {} rcode {}", srv.name, options_.zone, st.ToString(), rcode);
      srv.breaker.OnFailure(t);
      ScheduleProbe(index);
    }
  });
}

Health UpstreamPool::health() const {
  if (NextServer(0) == servers_.size()) return Health::kDown;
  if (clock_->Now() < degraded_until_) return Health::kDegraded;
  return Health::kHealthy;
}

void UpstreamPool::ReportClientTimeout() { MarkBad(clock_->Now()); }

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

std::vector<ServerStatus> UpstreamPool::servers() const {
  std::vector<ServerStatus> out;
  for (const auto& s : servers_) {
    out.push_back({s->name, s->breaker.state(), s->breaker.state_since(), s->breaker.transitions(),
                   s->breaker.consecutive_failures(), s->queries, s->failures, s->srtt});
  }
  return out;
}

}  // namespace nodedns::upstream
