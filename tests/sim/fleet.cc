#include "tests/sim/fleet.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <random>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lib/cache/cache.h"
#include "lib/common/timer_queue.h"
#include "lib/config/config.h"
#include "lib/dns/constants.h"
#include "lib/dns/message.h"
#include "lib/dns/name.h"
#include "lib/resolver/resolver.h"
#include "lib/server/worker.h"
#include "lib/upstream/pool.h"
#include "lib/upstream/router.h"
#include "tests/support/all_counters.h"
#include "tests/support/dns_client.h"
#include "tests/support/fake_clock.h"

namespace nodedns::sim {
namespace {

enum Phase : int { kSteady = 0, kDown = 1, kRecovery = 2, kFull = 3 };

class Fleet;

// One node's way to the server: UdpChannel's attempts, each its own ID.
class FleetTransport final : public upstream::Transport {
 public:
  explicit FleetTransport(Fleet* fleet) : fleet_(fleet) {}
  void Send(absl::Span<const uint8_t> query, upstream::Callback done) override;
  upstream::AnswerTiming last_answer() const override { return last_answer_; }
  // Every query in flight gets Cancelled, in the order sent.
  void Shutdown();

 private:
  struct Flight {
    uint64_t id = 0;
    bool probe = false;  // a SOA query
    std::vector<uint8_t> query;
    upstream::Callback done;
    std::vector<absl::Time> sent;  // per attempt
    bool finished = false;
  };
  void Attempt(const std::shared_ptr<Flight>& f);
  void Finish(const std::shared_ptr<Flight>& f, const absl::Status& st, absl::Span<const uint8_t> answer,
              const upstream::AnswerTiming& timing);

  Fleet* const fleet_;
  upstream::AnswerTiming last_answer_;
  uint64_t next_ = 1;
  std::map<uint64_t, std::shared_ptr<Flight>> flights_;
};

class Fleet final : public resolver::ReplySink {
 public:
  explicit Fleet(const FleetSchedule& s);
  ~Fleet() override;
  FleetResult Run();
  void SendReply(const resolver::ReplyTarget& to, absl::Span<const uint8_t> answer) override;

  // The server receives an attempt now: when it will answer it (and with
  // what), or nothing (blackhole, or dropped over its queue).
  std::optional<absl::Time> Arrive(bool probe);
  // The server's answer to `query` at `at`.
  std::vector<uint8_t> Answer(absl::Span<const uint8_t> query, absl::Time at);
  FakeClock& clock() { return clock_; }
  TimerQueue& timers() { return timers_; }
  const config::Config& config() const { return config_; }

 private:
  struct Node {
    std::unique_ptr<cache::Cache> cache;
    std::unique_ptr<FleetTransport> transport;
    std::unique_ptr<upstream::UpstreamPool> pool;
    upstream::Zone zone;
    upstream::Router router;
    std::unique_ptr<resolver::Resolver> resolver;
    std::vector<bool> known;  // per name: answered correctly before
    bool fresh = false;
  };
  struct Outstanding {
    int node;
    int name;
    bool known;
    int phase;
    absl::Time asked;
  };
  Phase PhaseAt(absl::Time t) const;
  int Second(absl::Time t) const { return static_cast<int>(absl::ToInt64Seconds(t - start_)); }
  double CapacityAt(absl::Time t) const;
  void ScheduleAsk(int node);
  void Ask(int node);
  void Violation(const std::string& what);

  const FleetSchedule s_;
  const config::Config config_;
  FakeClock clock_;
  TimerQueue timers_;
  AllCounters counters_;
  std::mt19937_64 rng_;
  absl::Time start_, recovery_at_, full_at_, end_;
  std::vector<double> cdf_;
  std::vector<std::string> wires_;  // per name
  std::vector<Node> nodes_;
  absl::flat_hash_map<uint64_t, Outstanding> outstanding_;
  uint64_t next_id_ = 1;
  absl::Time server_free_ = absl::InfinitePast();
  FleetResult result_;
  uint8_t out_[dns::kMaxMessageSize];
};

void FleetTransport::Send(absl::Span<const uint8_t> query, upstream::Callback done) {
  auto f = std::make_shared<Flight>();
  f->query.assign(query.begin(), query.end());
  auto parsed = dns::ParseMessage(query);
  f->probe = parsed.ok() && parsed->questions.size() == 1 && parsed->questions[0].type == dns::kTypeSOA;
  f->done = std::move(done);
  f->id = next_++;
  flights_.emplace(f->id, f);
  Attempt(f);
}

void FleetTransport::Attempt(const std::shared_ptr<Flight>& f) {
  absl::Time now = fleet_->clock().Now();
  int k = static_cast<int>(f->sent.size());
  f->sent.push_back(now);
  const auto& transport = fleet_->config().transport;
  if (std::optional<absl::Time> at = fleet_->Arrive(f->probe)) {
    fleet_->timers().Add(*at, [this, f, k] {
      if (f->finished) return;  // a stray: an earlier attempt's answer won
      upstream::AnswerTiming timing;
      timing.sent = f->sent[k];
      timing.received = fleet_->clock().Now();
      timing.earlier_attempts = k;
      std::vector<uint8_t> answer = fleet_->Answer(f->query, timing.received);
      Finish(f, absl::OkStatus(), answer, timing);
    });
  }
  fleet_->timers().Add(now + transport.timeout * (1 << k), [this, f] {
    if (f->finished) return;
    if (static_cast<int>(f->sent.size()) < fleet_->config().transport.attempts) return Attempt(f);
    Finish(f, absl::DeadlineExceededError("fleet: no answer"), {}, {});
  });
}

void FleetTransport::Finish(const std::shared_ptr<Flight>& f, const absl::Status& st, absl::Span<const uint8_t> answer,
                            const upstream::AnswerTiming& timing) {
  f->finished = true;
  flights_.erase(f->id);
  last_answer_ = timing;
  upstream::Callback done = std::move(f->done);
  done(st, answer);
}

void FleetTransport::Shutdown() {
  auto flights = std::move(flights_);
  flights_.clear();
  for (auto& [id, f] : flights) {
    f->finished = true;
    upstream::Callback done = std::move(f->done);
    done(absl::CancelledError("fleet: shut down"), {});
  }
}

Fleet::Fleet(const FleetSchedule& s) : s_(s), config_(config::DefaultConfig()), rng_(s.seed * 104729 + 7) {
  spdlog::set_level(std::getenv("NODEDNS_SIM_DEBUG") ? spdlog::level::debug : spdlog::level::off);
  start_ = clock_.Now();
  recovery_at_ = start_ + s_.steady + s_.down;
  full_at_ = recovery_at_ + s_.recovery;
  end_ = full_at_ + s_.full;
  result_.recovery_begin = Second(recovery_at_);
  result_.recovery_end = Second(full_at_);
  result_.recovery_capacity = CapacityAt(recovery_at_);
  int seconds = Second(end_) + 1;
  result_.received.assign(seconds, 0);
  result_.dropped.assign(seconds, 0);
  result_.probes.assign(seconds, 0);
  double sum = 0;
  for (int i = 0; i < s_.names; ++i) {
    sum += 1.0 / std::pow(i + 1, 0.9);
    cdf_.push_back(sum);
    wires_.push_back(*dns::NameFromText(absl::StrCat("svc", i, ".fleet.")));
  }
  for (double& c : cdf_) c /= sum;
  const config::ZoneConfig& zc = config_.zones.at(0);
  nodes_.resize(s_.nodes);
  for (int i = 0; i < s_.nodes; ++i) {
    Node& n = nodes_[i];
    n.cache = *cache::Cache::Create(config_.cache);
    n.transport = std::make_unique<FleetTransport>(this);
    uint32_t seed = static_cast<uint32_t>(s_.seed * 7919 + i);
    n.pool = std::make_unique<upstream::UpstreamPool>(
        server::PoolOptionsFor(config_, zc), std::vector<upstream::UpstreamPool::ServerSpec>{{absl::StrCat("cluster-dns-", i), n.transport.get()}},
        &clock_, &timers_, &counters_, seed);
    n.zone.name = zc.name;
    n.zone.upstream = n.pool.get();
    n.zone.max_stale = zc.max_stale;
    n.zone.last_known_good = zc.last_known_good;
    n.router.AddZone(*dns::NameFromText(zc.name), &n.zone);
    n.resolver = std::make_unique<resolver::Resolver>(config_.resolver, n.cache.get(), &n.router, &clock_, &timers_,
                                                      &counters_, seed);
    n.known.assign(s_.names, false);
    ScheduleAsk(i);
  }
  result_.fresh_after.assign(s_.nodes, std::numeric_limits<double>::infinity());
}

Fleet::~Fleet() {
  for (Node& n : nodes_) n.pool->CancelQueued();
  for (Node& n : nodes_) n.transport->Shutdown();
  for (Node& n : nodes_) {
    n.resolver.reset();
    n.pool.reset();
  }
}

Phase Fleet::PhaseAt(absl::Time t) const {
  if (t < start_ + s_.steady) return kSteady;
  if (t < recovery_at_) return kDown;
  if (t < full_at_) return kRecovery;
  return kFull;
}

double Fleet::CapacityAt(absl::Time t) const {
  double full = s_.capacity_per_node * s_.nodes;
  switch (PhaseAt(t)) {
    case kDown: return 0;
    case kRecovery: return full * s_.recovery_factor;
    default: return full;
  }
}

std::optional<absl::Time> Fleet::Arrive(bool probe) {
  absl::Time now = clock_.Now();
  double capacity = CapacityAt(now);
  if (capacity <= 0) return std::nullopt;  // blackhole: not even received
  int sec = Second(now);
  ++result_.received[sec];
  result_.probes[sec] += probe;
  absl::Time begin = std::max(now, server_free_);
  if (begin - now > s_.queue) {
    ++result_.dropped[sec];
    return std::nullopt;
  }
  server_free_ = begin + absl::Seconds(1.0 / capacity);
  return server_free_;
}

std::vector<uint8_t> Fleet::Answer(absl::Span<const uint8_t> query, absl::Time at) {
  auto q = dns::ParseMessage(query);
  if (!q.ok() || q->questions.size() != 1) {
    Violation("nodedns sent a malformed query upstream");
    return {};
  }
  dns::Message r = *q;
  r.flags |= dns::kFlagQR | dns::kFlagRA;
  const std::string& qname = q->questions[0].name;
  auto it = std::find(wires_.begin(), wires_.end(), qname);
  if (it != wires_.end() && q->questions[0].type == dns::kTypeA) {
    int name = static_cast<int>(it - wires_.begin());
    char generation = at >= recovery_at_ ? 2 : 1;
    std::string rdata = {10, generation, static_cast<char>(name >> 8), static_cast<char>(name)};
    r.answers.push_back({qname, dns::kTypeA, dns::kClassIN, s_.ttl, rdata});
  } else {
    // Anything else (the probes' SOA queries, AAAA): no data, with the SOA.
    std::string soa = *dns::NameFromText("ns.fleet") + *dns::NameFromText("h.fleet");
    soa.append(16, '\0');
    soa += std::string{0, 0, 0, static_cast<char>(s_.ttl)};
    r.authority.push_back({*dns::NameFromText("fleet"), dns::kTypeSOA, dns::kClassIN, s_.ttl, soa});
  }
  return *dns::WriteMessage(r);
}

void Fleet::ScheduleAsk(int node) {
  std::exponential_distribution<double> gap(s_.qps_per_node);
  absl::Time at = clock_.Now() + absl::Seconds(gap(rng_));
  if (at >= end_) return;
  timers_.Add(at, [this, node] {
    Ask(node);
    ScheduleAsk(node);
  });
}

void Fleet::Ask(int node) {
  double u = std::uniform_real_distribution<double>(0, 1)(rng_);
  int name = std::min(s_.names - 1, static_cast<int>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin()));
  Node& n = nodes_[node];
  uint64_t id = next_id_++;
  ++result_.client_queries;
  int phase = PhaseAt(clock_.Now());
  outstanding_[id] = Outstanding{node, name, n.known[name], phase, clock_.Now()};
  testing::QueryOptions o;
  o.id = static_cast<uint16_t>(id);
  std::vector<uint8_t> q = testing::MakeQuery(dns::NameToText(wires_[name]), dns::kTypeA, o);
  resolver::ReplyTarget to;
  to.sink = this;
  // Ten pods a node, each its own address (the fair share is per client).
  to.peer = *SocketAddress::Parse(absl::StrCat("10.", node / 250, ".", node % 250, ".", 1 + id % 10, ":5353"));
  to.connection = id;
  size_t len = 0;
  auto outcome = n.resolver->HandleQuery(q.data(), q.size(), to, out_, sizeof(out_), &len);
  if (outcome == resolver::Resolver::Outcome::kAnswered) {
    SendReply(to, {out_, len});
  } else if (outcome == resolver::Resolver::Outcome::kDropped) {
    outstanding_.erase(id);  // shed: the pod's own retry would ask again; counted as not answered
    if (n.known[name]) ++result_.known_asked[phase];
  }
}

void Fleet::SendReply(const resolver::ReplyTarget& to, absl::Span<const uint8_t> wire) {
  auto it = outstanding_.find(to.connection);
  if (it == outstanding_.end()) return Violation(absl::StrCat("query ", to.connection, " answered twice"));
  Outstanding o = it->second;
  outstanding_.erase(it);
  auto m = dns::ParseMessage(wire);
  if (!m.ok()) return Violation("an answer does not parse: " + m.status().ToString());
  Node& n = nodes_[o.node];
  bool right = false;
  int generation = 0;
  for (const auto& rr : m->answers) {
    if (rr.type != dns::kTypeA || rr.rdata.size() != 4) continue;
    int name = (static_cast<uint8_t>(rr.rdata[2]) << 8) | static_cast<uint8_t>(rr.rdata[3]);
    right = name == o.name;
    generation = rr.rdata[1];
  }
  if (o.known) {
    ++result_.known_asked[o.phase];
    result_.known_answered[o.phase] += right;
  }
  if (right) n.known[o.name] = true;
  if (o.asked >= recovery_at_ + absl::Seconds(2)) {
    ++result_.late_answers;
    result_.late_stale += right && generation == 1;
  }
  if (right && generation == 2 && !n.fresh) {
    n.fresh = true;
    result_.fresh_after[o.node] = absl::ToDoubleSeconds(clock_.Now() - recovery_at_);
  }
}

void Fleet::Violation(const std::string& what) {
  if (result_.violation.empty()) result_.violation = absl::StrCat(absl::FormatDuration(clock_.Now() - start_), ": ", what);
}

FleetResult Fleet::Run() {
  while (true) {
    auto next = timers_.NextDeadline();
    if (!next || *next > end_) break;
    clock_.Set(std::max(*next, clock_.Now()));
    timers_.RunDue(clock_.Now());
  }
  return result_;
}

}  // namespace

std::string FleetSchedule::ToString() const {
  return absl::StrFormat(
      "seed %d: %d nodes x %.0f qps over %d names, TTL %d s, capacity %.0f qps, recovery at %.3f of it, queue %s; "
      "steady %s, down %s, recovery %s, full %s",
      seed, nodes, qps_per_node, names, ttl, capacity_per_node * nodes, recovery_factor,
      absl::FormatDuration(queue), absl::FormatDuration(steady), absl::FormatDuration(down),
      absl::FormatDuration(recovery), absl::FormatDuration(full));
}

double FleetResult::RecoveryLoad() const {
  uint64_t sum = 0;
  for (int s = recovery_begin; s < recovery_end; ++s) sum += received[s];
  return sum / (recovery_capacity * std::max(1, recovery_end - recovery_begin));
}

double FleetResult::RecoveryPeak(int from_second) const {
  uint64_t peak = 0;
  for (int s = recovery_begin + from_second; s < recovery_end; ++s) peak = std::max(peak, received[s]);
  return peak / recovery_capacity;
}

double FleetResult::RecoveryDropShare() const {
  uint64_t got = 0, lost = 0;
  for (int s = recovery_begin; s < recovery_end; ++s) got += received[s], lost += dropped[s];
  return got == 0 ? 0 : static_cast<double>(lost) / got;
}

double FleetResult::FreshOn(double share) const {
  std::vector<double> v = fresh_after;
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t k = std::min(v.size() - 1, static_cast<size_t>(std::ceil(share * v.size())) - 1);
  return v[k];
}

std::string FleetResult::Summary() const {
  std::string s;
  static const char* kNames[] = {"steady", "down", "recovery", "full"};
  for (int p = 0; p < 4; ++p) {
    absl::StrAppendFormat(&s, "%s: known names %d/%d answered; ", kNames[p], known_answered[p], known_asked[p]);
  }
  absl::StrAppendFormat(&s, "recovery: load %.2f, peak %.2f (from its 2nd second %.2f), %.1f %% dropped; "
                        "fresh on 99 %% of nodes after %.2f s; %d of %d answers 2 s or more after the return stale",
                        RecoveryLoad(), RecoveryPeak(0), RecoveryPeak(1), 100 * RecoveryDropShare(), FreshOn(0.99),
                        late_stale, late_answers);
  s += "\nper second received/dropped/probes around the recovery:";
  for (int t = std::max(0, recovery_begin - 1); t < std::min<int>(recovery_end + 2, received.size()); ++t) {
    absl::StrAppendFormat(&s, " %d/%d/%d", received[t], dropped[t], probes[t]);
  }
  return s;
}

FleetResult RunFleet(const FleetSchedule& schedule) {
  Fleet fleet(schedule);
  return fleet.Run();
}

}  // namespace nodedns::sim
