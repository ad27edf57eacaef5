#include "lib/resolver/resolver.h"

#include <cstdlib>
#include <deque>
#include <new>

#include "gtest/gtest.h"
#include "lib/dns/message.h"
#include "lib/dns/name.h"
#include "lib/upstream/pool.h"
#include "tests/support/all_counters.h"
#include "tests/support/fake_clock.h"
#include "lib/upstream/upstream.h"
#include "tests/support/dns_client.h"

// Counts heap allocations made by this thread while g_counting is set, to
// show that a cache hit allocates nothing.
namespace {
thread_local bool g_counting = false;
thread_local int g_allocations = 0;
}  // namespace

void* operator new(size_t n) {
  if (g_counting) ++g_allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace nodedns::resolver {
namespace {

using testing::MakeQuery;
using testing::QueryOptions;

// A transport whose answers the test decides, one query at a time.
class ScriptedTransport : public upstream::Transport {
 public:
  struct Sent {
    std::vector<uint8_t> query;
    upstream::Callback done;
  };
  void Send(absl::Span<const uint8_t> query, upstream::Callback done) override {
    sent.push_back({std::vector<uint8_t>(query.begin(), query.end()), std::move(done)});
    ++(dns::ParseMessage(query)->questions[0].type == dns::kTypeSOA ? probes : total);
  }
  // Answers the oldest query: one A record, or the given rcode (NXDOMAIN with
  // an SOA), or an answer for another name.
  void AnswerOldest(uint32_t ttl, uint16_t rcode = dns::kNoError, const char* other_name = nullptr) {
    ASSERT_FALSE(sent.empty());
    Sent s = std::move(sent.front());
    sent.pop_front();
    auto q = dns::ParseMessage(s.query);
    ASSERT_TRUE(q.ok());
    dns::Message r = *q;
    r.flags |= dns::kFlagQR | dns::kFlagRA;
    r.set_rcode(rcode);
    if (other_name) r.questions[0].name = *dns::NameFromText(other_name);
    if (rcode == dns::kNoError && q->questions[0].type != dns::kTypeSOA) {
      r.answers.push_back({q->questions[0].name, dns::kTypeA, dns::kClassIN, ttl, "\x0a\x00\x00\x07"});
    }
    if (rcode == dns::kNxDomain) {
      std::string soa = *dns::NameFromText("ns.example") + *dns::NameFromText("h.example");
      soa.append(16, '\0');
      soa.append("\x00\x00\x00\x3c", 4);
      r.authority.push_back({*dns::NameFromText("example"), dns::kTypeSOA, dns::kClassIN, ttl, soa});
    }
    auto wire = dns::WriteMessage(r);
    s.done(absl::OkStatus(), *wire);
  }
  void FailOldest(absl::Status st) {
    ASSERT_FALSE(sent.empty());
    Sent s = std::move(sent.front());
    sent.pop_front();
    s.done(st, {});
  }
  uint16_t OldestQtype() const { return dns::ParseMessage(sent.front().query)->questions[0].type; }
  // Answers probes (SOA) in the queue with `rcode`, and leaves the rest.
  void AnswerProbes(uint16_t rcode) {
    std::deque<Sent> rest;
    while (!sent.empty()) {
      if (OldestQtype() == dns::kTypeSOA) {
        AnswerOldest(60, rcode);
      } else {
        rest.push_back(std::move(sent.front()));
        sent.pop_front();
      }
    }
    sent = std::move(rest);
  }
  std::deque<Sent> sent;
  int total = 0;   // queries for names
  int probes = 0;  // SOA probes
};

class RecordingSink : public ReplySink {
 public:
  void SendReply(const ReplyTarget& to, absl::Span<const uint8_t> answer) override {
    replies.push_back({to.connection, std::vector<uint8_t>(answer.begin(), answer.end())});
  }
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> replies;
};

uint16_t EdeOf(const dns::Message& m) {
  if (!m.edns || m.edns->options.empty()) return 0xffff;
  return dns::Read16(reinterpret_cast<const uint8_t*>(m.edns->options[0].data.data()));
}

class ResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cache_ = *cache::Cache::Create(cache::CacheOptions{});
    pool_options_.client_timeout = absl::Milliseconds(100);
    pool_options_.max_qps = 0;
    // No limit unless a test sets one.
    pool_options_.limiter.initial_limit = pool_options_.limiter.max_limit = 100000;
    Make();
  }
  // (Re)builds pool, zone and resolver from pool_options_, zone_ and options_.
  void Make() {
    resolver_.reset();
    router_ = upstream::Router();
    pool_ = std::make_unique<upstream::UpstreamPool>(
        pool_options_, std::vector<upstream::UpstreamPool::ServerSpec>{{"scripted", &transport_}}, &clock_, &timers_,
        &counters_, 7);
    zone_.upstream = pool_.get();
    router_.AddZone(*dns::NameFromText("."), &zone_);
    resolver_ = std::make_unique<Resolver>(options_, cache_.get(), &router_, &clock_, &timers_, &counters_);
  }
  // Returns the synchronous answer, or nullopt when the query is pending.
  std::optional<dns::Message> Ask(const std::string& name, uint64_t conn = 1, QueryOptions o = {}) {
    auto q = MakeQuery(name, dns::kTypeA, o);
    ReplyTarget to;
    to.sink = &sink_;
    to.connection = conn;
    size_t n = 0;
    auto outcome = resolver_->HandleQuery(q.data(), q.size(), to, out_, sizeof(out_), &n);
    if (outcome == Resolver::Outcome::kPending) return std::nullopt;
    EXPECT_EQ(outcome, Resolver::Outcome::kAnswered);
    auto m = dns::ParseMessage({out_, n});
    EXPECT_TRUE(m.ok());
    return *m;
  }
  dns::Message Reply(size_t i) { return *dns::ParseMessage(sink_.replies.at(i).second); }
  // Heap allocations made while answering `query` `times` times; each must be
  // answered at once.
  int AllocationsToAnswer(const std::vector<uint8_t>& query, int times) {
    ReplyTarget to;
    to.sink = &sink_;
    size_t n = 0;
    g_allocations = 0;
    g_counting = true;
    for (int i = 0; i < times; ++i) {
      EXPECT_EQ(resolver_->HandleQuery(query.data(), query.size(), to, out_, sizeof(out_), &n),
                Resolver::Outcome::kAnswered);
    }
    g_counting = false;
    return g_allocations;
  }
  void Advance(absl::Duration d) {
    clock_.Advance(d);
    timers_.RunDue(clock_.Now());
  }
  // Advances in 250 ms steps, answering the zone probes with `rcode`.
  void AdvanceAnsweringProbes(absl::Duration d, uint16_t rcode) {
    for (absl::Duration done; done < d; done += absl::Milliseconds(250)) {
      Advance(std::min(absl::Milliseconds(250), d - done));
      transport_.AnswerProbes(rcode);
    }
  }
  // Puts `name` in the cache with `ttl`.
  void Warm(const std::string& name, uint32_t ttl) {
    size_t before = sink_.replies.size();
    ASSERT_FALSE(Ask(name));
    transport_.AnswerOldest(ttl);
    ASSERT_EQ(sink_.replies.size(), before + 1);
  }

  FakeClock clock_;
  TimerQueue timers_;
  AllCounters counters_;
  std::unique_ptr<cache::Cache> cache_;
  ScriptedTransport transport_;
  upstream::PoolOptions pool_options_;
  std::unique_ptr<upstream::UpstreamPool> pool_;
  upstream::Zone zone_;
  upstream::Router router_;
  ResolverOptions options_;
  RecordingSink sink_;
  std::unique_ptr<Resolver> resolver_;
  uint8_t out_[Resolver::kMaxAnswerSize];
};

TEST_F(ResolverTest, MissGoesUpstreamThenHitsAgeWithTheClock) {
  EXPECT_FALSE(Ask("www.example"));
  ASSERT_EQ(transport_.sent.size(), 1u);
  // The upstream query: RD, EDNS, lowercased question.
  auto uq = dns::ParseMessage(transport_.sent[0].query);
  ASSERT_TRUE(uq.ok());
  EXPECT_TRUE(uq->flags & dns::kFlagRD);
  ASSERT_TRUE(uq->edns);
  EXPECT_EQ(uq->edns->udp_size, dns::kDefaultEdnsPayload);
  transport_.AnswerOldest(300);
  ASSERT_EQ(sink_.replies.size(), 1u);
  EXPECT_EQ(Reply(0).answers.at(0).ttl, 300u);

  clock_.Advance(absl::Seconds(100));
  auto hit = Ask("WWW.example");
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->answers.at(0).ttl, 200u);
  EXPECT_EQ(dns::NameToText(hit->questions[0].name), "WWW.example.");
  EXPECT_EQ(counters_.cache_hits.load(), 1u);
  EXPECT_EQ(counters_.upstream_queries.load(), 1u);

  clock_.Advance(absl::Seconds(200));  // expired: refreshed (stale kept meanwhile)
  EXPECT_FALSE(Ask("www.example"));
  EXPECT_EQ(transport_.sent.size(), 1u);
  EXPECT_EQ(counters_.upstream_queries.load(), 2u);
  EXPECT_EQ(counters_.refreshes.load(), 1u);
}

TEST_F(ResolverTest, CacheHitAllocatesNothing) {
  Ask("hot.example");
  transport_.AnswerOldest(300);
  EXPECT_EQ(AllocationsToAnswer(MakeQuery("HOT.example", dns::kTypeA), 100), 0);
  EXPECT_EQ(counters_.cache_hits.load(), 100u);
  // Control: the counter does see the allocations of a miss.
  ReplyTarget to;
  to.sink = &sink_;
  size_t n = 0;
  auto miss = MakeQuery("cold.example", dns::kTypeA);
  g_counting = true;
  resolver_->HandleQuery(miss.data(), miss.size(), to, out_, sizeof(out_), &n);
  g_counting = false;
  EXPECT_GT(g_allocations, 0);
}

TEST_F(ResolverTest, IdenticalMissesShareOneUpstreamQuery) {
  for (int i = 0; i < 50; ++i) {
    QueryOptions o;
    o.id = static_cast<uint16_t>(i);
    EXPECT_FALSE(Ask(i % 2 ? "Same.Example" : "same.example", static_cast<uint64_t>(i), o));
  }
  EXPECT_EQ(transport_.sent.size(), 1u);
  EXPECT_EQ(counters_.coalesced.load(), 49u);
  transport_.AnswerOldest(60);
  ASSERT_EQ(sink_.replies.size(), 50u);
  for (int i = 0; i < 50; ++i) {
    dns::Message m = Reply(static_cast<size_t>(i));
    EXPECT_EQ(sink_.replies[i].first, static_cast<uint64_t>(i));
    EXPECT_EQ(m.id, i);
    EXPECT_EQ(dns::NameToText(m.questions[0].name), i % 2 ? "Same.Example." : "same.example.");
    EXPECT_EQ(m.answers.size(), 1u);
  }
}

TEST_F(ResolverTest, UpstreamFailuresAnswerServfailWithEde) {
  pool_options_.breaker.failures_to_open = 100;
  options_.servfail_ttl = absl::ZeroDuration();
  Make();
  Ask("t.example");
  transport_.FailOldest(absl::DeadlineExceededError("timeout"));
  dns::Message m = Reply(0);
  EXPECT_EQ(m.rcode(), dns::kServFail);
  EXPECT_EQ(EdeOf(m), dns::kEdeNoReachableAuthority);
  EXPECT_EQ(counters_.upstream_timeouts.load(), 1u);

  Ask("t.example");
  transport_.AnswerOldest(60, dns::kNoError, "other.example");  // wrong question
  EXPECT_EQ(Reply(1).rcode(), dns::kServFail);
  EXPECT_EQ(counters_.upstream_mismatched.load(), 1u);

  Ask("t.example");
  transport_.AnswerOldest(60, dns::kServFail);
  EXPECT_EQ(Reply(2).rcode(), dns::kServFail);
  EXPECT_EQ(counters_.upstream_servfail.load(), 1u);

  Ask("t.example");
  transport_.AnswerOldest(60, dns::kRefused);  // relayed when nothing is cached
  EXPECT_EQ(Reply(3).rcode(), dns::kRefused);
  EXPECT_EQ(cache_->entries(), 0u);
  EXPECT_FALSE(Ask("t.example"));  // still a miss
}

TEST_F(ResolverTest, ServfailIsCachedBriefly) {
  Ask("sf.example");
  transport_.AnswerOldest(60, dns::kServFail);
  EXPECT_EQ(Reply(0).rcode(), dns::kServFail);
  auto cached = Ask("sf.example");
  ASSERT_TRUE(cached);
  EXPECT_EQ(cached->rcode(), dns::kServFail);
  EXPECT_EQ(EdeOf(*cached), dns::kEdeCachedError);
  EXPECT_EQ(transport_.total, 1);
  EXPECT_EQ(counters_.servfail_cached.load(), 1u);
  Advance(options_.servfail_ttl);
  EXPECT_FALSE(Ask("sf.example"));  // asked again after servfail_ttl
  EXPECT_EQ(transport_.total, 2);
}

TEST_F(ResolverTest, LimitsOnPendingAndWaiters) {
  options_.max_pending = 2;
  options_.max_waiters = 3;
  Make();
  EXPECT_FALSE(Ask("a.example"));
  EXPECT_FALSE(Ask("b.example"));
  auto refused = Ask("c.example");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->rcode(), dns::kServFail);
  EXPECT_EQ(counters_.pending_overflow.load(), 1u);
  EXPECT_FALSE(Ask("a.example"));
  EXPECT_FALSE(Ask("a.example"));
  auto too_many = Ask("a.example");
  ASSERT_TRUE(too_many);
  EXPECT_EQ(too_many->rcode(), dns::kServFail);
  EXPECT_EQ(counters_.waiters_overflow.load(), 1u);
}

TEST_F(ResolverTest, NoZoneMeansServfail) {
  upstream::Router only_cluster;
  only_cluster.AddZone(*dns::NameFromText("cluster.local"), &zone_);
  Resolver r(ResolverOptions{}, cache_.get(), &only_cluster, &clock_, &timers_, &counters_);
  auto q = MakeQuery("www.example", dns::kTypeA);
  ReplyTarget to;
  to.sink = &sink_;
  size_t n = 0;
  ASSERT_EQ(r.HandleQuery(q.data(), q.size(), to, out_, sizeof(out_), &n), Resolver::Outcome::kAnswered);
  EXPECT_EQ(dns::ParseMessage({out_, n})->rcode(), dns::kServFail);
  EXPECT_EQ(counters_.no_route.load(), 1u);
  EXPECT_TRUE(transport_.sent.empty());
}

TEST_F(ResolverTest, FilterAaaaAnswersNodataWithASynthesisedSoaAndAsksNobody) {
  upstream::Zone cluster = zone_;  // same upstream, AAAA filtered
  cluster.filter_aaaa = true;
  cluster.wire_length = dns::NameFromText("cluster.local")->size();
  router_.AddZone(*dns::NameFromText("cluster.local"), &cluster);
  ReplyTarget to;
  to.sink = &sink_;
  for (bool edns : {true, false}) {
    SCOPED_TRACE(edns ? "EDNS" : "no EDNS");
    QueryOptions o;
    o.edns = edns;
    auto q = MakeQuery("Web.Default.svc.CLUSTER.local", dns::kTypeAAAA, o);
    size_t n = 0;
    ASSERT_EQ(resolver_->HandleQuery(q.data(), q.size(), to, out_, sizeof(out_), &n), Resolver::Outcome::kAnswered);
    auto m = dns::ParseMessage({out_, n});
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->rcode(), dns::kNoError);
    EXPECT_TRUE(m->flags & dns::kFlagQR);
    EXPECT_TRUE(m->flags & dns::kFlagRA);
    EXPECT_FALSE(m->flags & dns::kFlagAA);
    ASSERT_EQ(m->questions.size(), 1u);
    EXPECT_EQ(dns::NameToText(m->questions[0].name), "Web.Default.svc.CLUSTER.local.");
    EXPECT_EQ(m->questions[0].type, dns::kTypeAAAA);
    EXPECT_TRUE(m->answers.empty());
    ASSERT_EQ(m->authority.size(), 1u);
    const dns::Record& soa = m->authority[0];
    EXPECT_EQ(soa.type, dns::kTypeSOA);
    EXPECT_EQ(dns::NameToText(dns::Lowercase(soa.name)), "cluster.local.");
    EXPECT_EQ(soa.ttl, 60u);
    // MINIMUM (the negative TTL, RFC 2308) is the last 4 octets of the RDATA.
    ASSERT_GE(soa.rdata.size(), 20u);
    EXPECT_EQ(dns::Read32(reinterpret_cast<const uint8_t*>(soa.rdata.data()) + soa.rdata.size() - 4), 60u);
    EXPECT_EQ(m->edns.has_value(), edns);
  }
  EXPECT_EQ(counters_.aaaa_filtered.load(), 2u);
  EXPECT_TRUE(transport_.sent.empty());
  // A queries in the zone, and AAAA queries outside it, go upstream.
  auto a = MakeQuery("web.default.svc.cluster.local", dns::kTypeA);
  auto aaaa = MakeQuery("www.example", dns::kTypeAAAA);
  size_t n = 0;
  EXPECT_EQ(resolver_->HandleQuery(a.data(), a.size(), to, out_, sizeof(out_), &n), Resolver::Outcome::kPending);
  EXPECT_EQ(resolver_->HandleQuery(aaaa.data(), aaaa.size(), to, out_, sizeof(out_), &n), Resolver::Outcome::kPending);
  EXPECT_EQ(transport_.sent.size(), 2u);
  EXPECT_EQ(counters_.aaaa_filtered.load(), 2u);
}

TEST_F(ResolverTest, OurOwnLoopProbeComingBackIsAnsweredHereAndNeverForwarded) {
  LoopProbes probes;
  Resolver r(options_, cache_.get(), &router_, &clock_, &timers_, &counters_, 1, &probes);
  ReplyTarget to;
  to.sink = &sink_;
  auto probe = MakeQuery("_NODEDNS-loop-0123456789abcdef.example", dns::kTypeHINFO);
  size_t n = 0;
  // Not armed: an ordinary miss.
  EXPECT_EQ(r.HandleQuery(probe.data(), probe.size(), to, out_, sizeof(out_), &n), Resolver::Outcome::kPending);
  EXPECT_EQ(transport_.sent.size(), 1u);
  probes.Arm({*dns::NameFromText("_nodedns-loop-0123456789abcdef.example")});
  ASSERT_EQ(r.HandleQuery(probe.data(), probe.size(), to, out_, sizeof(out_), &n), Resolver::Outcome::kAnswered);
  EXPECT_EQ(dns::ParseMessage({out_, n})->rcode(), dns::kServFail);
  EXPECT_EQ(transport_.sent.size(), 1u) << "a returning probe must not go round again";
  EXPECT_EQ(counters_.loop_probes_returned.load(), 1u);
  EXPECT_EQ(probes.hits(*dns::NameFromText("_nodedns-loop-0123456789abcdef.example")), 1);
}

TEST_F(ResolverTest, EarlyExitsAreCounted) {
  ReplyTarget to;
  to.sink = &sink_;
  size_t n = 0;
  uint8_t junk[5] = {1, 2, 3, 4, 5};
  EXPECT_EQ(resolver_->HandleQuery(junk, sizeof(junk), to, out_, sizeof(out_), &n), Resolver::Outcome::kDropped);
  auto resp = MakeQuery("x.example", dns::kTypeA);
  resp[2] |= 0x80;
  EXPECT_EQ(resolver_->HandleQuery(resp.data(), resp.size(), to, out_, sizeof(out_), &n), Resolver::Outcome::kDropped);
  auto bad = MakeQuery("x.example", dns::kTypeA, {.edns_version = 3});
  EXPECT_EQ(resolver_->HandleQuery(bad.data(), bad.size(), to, out_, sizeof(out_), &n), Resolver::Outcome::kAnswered);
  EXPECT_EQ(counters_.dropped_too_short.load(), 1u);
  EXPECT_EQ(counters_.dropped_is_response.load(), 1u);
  EXPECT_EQ(counters_.badvers_sent.load(), 1u);
  EXPECT_TRUE(transport_.sent.empty());
}

}  // namespace
}  // namespace nodedns::resolver

namespace nodedns::resolver {
namespace {

// ---- RFC 8767 state machine, on the fake clock --------------------------

TEST_F(ResolverTest, HealthyRefreshAnsweredInTimeIsFresh) {
  Warm("a.example", 2);
  Advance(absl::Seconds(3));  // expired, within max_stale
  EXPECT_FALSE(Ask("a.example"));  // waits for the refresh
  ASSERT_EQ(transport_.sent.size(), 1u);
  Advance(absl::Milliseconds(50));  // within the 100 ms client timeout
  transport_.AnswerOldest(300);
  dns::Message m = Reply(1);
  EXPECT_EQ(m.answers.at(0).ttl, 300u);
  EXPECT_EQ(EdeOf(m), 0xffff);
  EXPECT_EQ(counters_.refreshes.load(), 1u);
  EXPECT_EQ(counters_.stale_answers_timeout.load(), 0u);
}

TEST_F(ResolverTest, StaleAfterClientTimeoutThenLateRefreshUpdatesCache) {
  Warm("a.example", 2);
  Advance(absl::Seconds(3));
  EXPECT_FALSE(Ask("a.example"));
  Advance(absl::Milliseconds(99));
  EXPECT_EQ(sink_.replies.size(), 1u);  // still waiting
  Advance(absl::Milliseconds(1));
  ASSERT_EQ(sink_.replies.size(), 2u);
  dns::Message stale = Reply(1);
  EXPECT_EQ(stale.rcode(), dns::kNoError);
  EXPECT_EQ(stale.answers.at(0).ttl, 30u);  // stale_reply_ttl
  EXPECT_EQ(EdeOf(stale), dns::kEdeStaleAnswer);
  EXPECT_EQ(counters_.stale_answers_timeout.load(), 1u);
  EXPECT_EQ(upstream::Health::kDegraded, pool_->health());  // it missed the client timeout
  transport_.AnswerOldest(600);  // the refresh arrives late: cache updated
  EXPECT_EQ(sink_.replies.size(), 2u);
  auto fresh = Ask("a.example");
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->answers.at(0).ttl, 600u);
  EXPECT_EQ(EdeOf(*fresh), 0xffff);
}

TEST_F(ResolverTest, FirstMissedClientTimeoutReleasesEveryWaiterOfTheZone) {
  Warm("a.example", 2);
  Warm("b.example", 2);
  Advance(absl::Seconds(3));
  EXPECT_FALSE(Ask("a.example"));
  Advance(absl::Milliseconds(60));
  EXPECT_FALSE(Ask("b.example"));  // its own timer would fire at 160 ms
  Advance(absl::Milliseconds(40));  // a's timer: the zone is degraded ...
  ASSERT_EQ(sink_.replies.size(), 4u);  // ... and b is answered stale too
  EXPECT_EQ(EdeOf(Reply(2)), dns::kEdeStaleAnswer);
  EXPECT_EQ(EdeOf(Reply(3)), dns::kEdeStaleAnswer);
  EXPECT_EQ(counters_.stale_answers_timeout.load(), 2u);
}

TEST_F(ResolverTest, FailedRefreshServesStaleUntilTheZoneAnswersOrTheWindowEnds) {
  pool_options_.breaker.failures_to_open = 1000;  // the zone stays up, failing
  Make();
  Warm("a.example", 2);
  Advance(absl::Seconds(3));
  EXPECT_FALSE(Ask("a.example"));
  transport_.AnswerOldest(0, dns::kServFail);
  dns::Message m = Reply(1);
  EXPECT_EQ(m.rcode(), dns::kNoError);
  EXPECT_EQ(EdeOf(m), dns::kEdeStaleAnswer);
  EXPECT_EQ(counters_.refresh_failures.load(), 1u);
  // Within failure_recheck, while the zone fails its probes too: stale at
  // once, nothing sent for the name; the zone is probed about once a second.
  for (int i = 0; i < 40; ++i) {
    Advance(absl::Milliseconds(250));
    transport_.AnswerProbes(dns::kServFail);
    auto s = Ask("a.example");
    ASSERT_TRUE(s);
    EXPECT_EQ(EdeOf(*s), dns::kEdeStaleAnswer);
  }
  EXPECT_EQ(transport_.total, 2);  // the warm-up and the one refresh
  EXPECT_GE(transport_.probes, 8);
  EXPECT_LE(transport_.probes, 25);
  AdvanceAnsweringProbes(absl::Seconds(21), dns::kServFail);  // failure_recheck (30 s) has passed
  Ask("a.example");  // degraded: stale at once, and refreshed in the background
  EXPECT_EQ(transport_.total, 3);
}

TEST_F(ResolverTest, AZoneAnswerEndsTheRecheckWindowOfEveryNameThatFailedBeforeIt) {
  Warm("a.example", 2);
  Warm("b.example", 2);
  Advance(absl::Seconds(3));
  for (const char* n : {"a.example", "b.example"}) {
    Ask(n);  // a waits for its refresh; b, in a degraded zone, is answered stale at once
    transport_.AnswerOldest(0, dns::kServFail);  // a short SERVFAIL outage
  }
  EXPECT_EQ(counters_.breaker_opened.load(), 0u);  // two failures: no breaker opened
  // The upstream is back; the next zone probe (within a second) finds it.
  Advance(absl::Seconds(1));
  EXPECT_EQ(counters_.zone_probes_sent.load(), 1u);
  transport_.AnswerProbes(dns::kNoError);
  EXPECT_EQ(pool_->health(), upstream::Health::kHealthy);
  for (const char* n : {"a.example", "b.example"}) {
    EXPECT_FALSE(Ask(n)) << n;  // refreshed at once, not after 30 s
    transport_.AnswerOldest(300);
    dns::Message fresh = Reply(sink_.replies.size() - 1);
    EXPECT_EQ(fresh.answers.at(0).ttl, 300u) << n;
    EXPECT_EQ(EdeOf(fresh), 0xffff) << n;
  }
}

TEST_F(ResolverTest, ANameBrokenOnItsOwnIsAskedAtMostOncePerRecheckMin) {
  Warm("a.example", 2);
  Warm("b.example", 2);
  Advance(absl::Seconds(3));
  EXPECT_FALSE(Ask("a.example"));
  transport_.AnswerOldest(0, dns::kServFail);  // a's authority is broken
  Ask("b.example");  // stale at once (one failure degrades the zone), refreshed in the background
  transport_.AnswerOldest(300);  // ... and the zone answers everything else
  int sent = transport_.total;
  for (int i = 0; i < 9; ++i) {
    Advance(absl::Milliseconds(100));
    transport_.AnswerProbes(dns::kNoError);
    auto s = Ask("a.example");  // within failure_recheck_min: not asked again
    ASSERT_TRUE(s);
    EXPECT_EQ(EdeOf(*s), dns::kEdeStaleAnswer);
  }
  EXPECT_EQ(transport_.total, sent);
  Advance(absl::Milliseconds(100));
  Ask("a.example");
  EXPECT_EQ(transport_.total, sent + 1);
}

TEST_F(ResolverTest, AQuerySentIntoAnOutageThatEndedIsSentAgain) {
  Warm("a.example", 2);
  Warm("b.example", 2);
  Advance(absl::Seconds(3));
  EXPECT_FALSE(Ask("a.example"));  // its refresh is lost (blackhole) ...
  Advance(absl::Milliseconds(20));
  EXPECT_FALSE(Ask("b.example"));  // ... and the upstream is back: b's is answered at once
  std::swap(transport_.sent.front(), transport_.sent.back());
  transport_.AnswerOldest(300);
  ASSERT_EQ(transport_.sent.size(), 1u);  // a's first refresh, still out
  // a is asked again: no waiting on a query that will only time out (3 s):
  // it goes out again. The first client keeps waiting on its own query (its
  // wait stays bounded by that one's).
  EXPECT_FALSE(Ask("a.example", 2));
  EXPECT_EQ(counters_.upstream_resent.load(), 1u);
  ASSERT_EQ(transport_.sent.size(), 2u);
  std::swap(transport_.sent.front(), transport_.sent.back());
  transport_.AnswerOldest(300);
  ASSERT_EQ(sink_.replies.size(), 4u);
  EXPECT_EQ(sink_.replies[3].first, 2u);
  EXPECT_EQ(Reply(3).answers.at(0).ttl, 300u);
  // The lost one times out at last: its client gets what is cached now, and
  // the failure, older than the zone's newest answer, starts no window.
  transport_.FailOldest(absl::DeadlineExceededError("timeout"));
  ASSERT_EQ(sink_.replies.size(), 5u);
  EXPECT_EQ(sink_.replies[4].first, 1u);
  EXPECT_EQ(Reply(4).answers.at(0).ttl, 300u);
  EXPECT_EQ(EdeOf(Reply(4)), 0xffff);
  auto fresh = Ask("a.example");
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->answers.at(0).ttl, 300u);
}

TEST_F(ResolverTest, ARestartAnswersStaleAtOnceAndTheFirstProbeDecides) {
  Warm("a.example", 2);
  Advance(absl::Seconds(3));
  // nodedns restarts (from its snapshot: the cache is kept) in the middle of
  // an outage. It knows nothing of the upstream yet: no client waits.
  Make();
  auto m = Ask("a.example");
  ASSERT_TRUE(m);
  EXPECT_EQ(EdeOf(*m), dns::kEdeStaleAnswer);
  EXPECT_EQ(transport_.total, 2);  // and a refresh went out in the background
  Advance(pool_options_.breaker.probe_min);
  EXPECT_EQ(transport_.probes, 1);
  transport_.AnswerProbes(dns::kNoError);  // the upstream answers: healthy
  EXPECT_EQ(pool_->health(), upstream::Health::kHealthy);
}

TEST_F(ResolverTest, DegradedServesStaleAtOnceAndRefreshesInBackground) {
  Warm("a.example", 2);
  Warm("b.example", 2);
  Advance(absl::Seconds(3));
  EXPECT_FALSE(Ask("a.example"));
  transport_.FailOldest(absl::UnavailableError("refused"));  // -> degraded
  ASSERT_EQ(pool_->health(), upstream::Health::kDegraded);
  auto b = Ask("b.example");  // answered at once, stale
  ASSERT_TRUE(b);
  EXPECT_EQ(EdeOf(*b), dns::kEdeStaleAnswer);
  ASSERT_EQ(transport_.sent.size(), 1u);  // ... and refreshed in the background
  transport_.AnswerOldest(120);
  auto fresh = Ask("b.example");
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->answers.at(0).ttl, 120u);
}

TEST_F(ResolverTest, BreakerOpenServesStaleWithoutUpstreamAndMissesFailFast) {
  for (const char* n : {"a.example", "b.example", "c.example", "d.example"}) Warm(n, 2);
  Advance(absl::Seconds(3));
  // Three failed refreshes open the breaker (failures_to_open = 3).
  for (const char* n : {"a.example", "b.example", "c.example"}) {
    Ask(n);
    ASSERT_FALSE(transport_.sent.empty());
    transport_.FailOldest(absl::DeadlineExceededError("timeout"));
  }
  ASSERT_EQ(pool_->health(), upstream::Health::kDown);
  EXPECT_EQ(counters_.breaker_opened.load(), 1u);
  int sent_before = transport_.total;
  auto d = Ask("d.example");
  ASSERT_TRUE(d);
  EXPECT_EQ(EdeOf(*d), dns::kEdeStaleAnswer);
  EXPECT_EQ(counters_.stale_answers_breaker.load(), 1u);
  auto miss = Ask("never-seen.example");
  ASSERT_TRUE(miss);
  EXPECT_EQ(miss->rcode(), dns::kServFail);
  EXPECT_EQ(EdeOf(*miss), dns::kEdeNoReachableAuthority);
  EXPECT_EQ(transport_.total, sent_before);  // nothing went upstream
  // Probes: at most one per interval, a SOA query for the zone.
  Advance(absl::Seconds(1));
  ASSERT_EQ(transport_.sent.size(), 1u);
  EXPECT_EQ(transport_.OldestQtype(), dns::kTypeSOA);
  EXPECT_EQ(counters_.probes_sent.load(), 1u);
  transport_.AnswerOldest(60);  // the probe is answered: breaker closes
  EXPECT_EQ(pool_->health(), upstream::Health::kHealthy);
  EXPECT_EQ(counters_.breaker_closed.load(), 1u);
  // a.example failed its refresh moments ago, but the probe has since found
  // the upstream answering: it is refreshed at once, not after 30 s.
  EXPECT_FALSE(Ask("a.example"));
  transport_.AnswerOldest(60);
  EXPECT_EQ(Reply(sink_.replies.size() - 1).answers.at(0).ttl, 60u);
  EXPECT_FALSE(Ask("d.example"));  // refreshed again
  transport_.AnswerOldest(60);
  EXPECT_EQ(Reply(sink_.replies.size() - 1).answers.at(0).ttl, 60u);
}

TEST_F(ResolverTest, StaleAnswerWhileDownAllocatesNothing) {
  // Longer than std::string's inline buffer, so a copy would allocate.
  const char* kLong = "a-name-longer-than-sso.example";
  for (const char* n : {"a.example", "b.example", "c.example", kLong}) Warm(n, 2);
  Advance(absl::Seconds(3));
  for (const char* n : {"a.example", "b.example", "c.example"}) {
    Ask(n);
    transport_.FailOldest(absl::DeadlineExceededError("timeout"));
  }
  ASSERT_EQ(pool_->health(), upstream::Health::kDown);
  // During an outage this is the path of nearly every query.
  EXPECT_EQ(AllocationsToAnswer(MakeQuery("A-Name-Longer-Than-SSO.example", dns::kTypeA), 100), 0);
  EXPECT_EQ(counters_.stale_answers_breaker.load(), 100u);
}

TEST_F(ResolverTest, StaleNegativeAnswerCarriesEde19) {
  ASSERT_FALSE(Ask("nx.example"));
  transport_.AnswerOldest(2, dns::kNxDomain);
  EXPECT_EQ(Reply(0).rcode(), dns::kNxDomain);
  Advance(absl::Seconds(3));
  EXPECT_FALSE(Ask("nx.example"));
  Advance(absl::Milliseconds(100));
  dns::Message m = Reply(1);
  EXPECT_EQ(m.rcode(), dns::kNxDomain);
  EXPECT_EQ(EdeOf(m), dns::kEdeStaleNxDomain);
  EXPECT_EQ(m.authority.at(0).ttl, 30u);
}

TEST_F(ResolverTest, MaxStaleBoundaryAndZero) {
  zone_.max_stale = absl::Seconds(60);
  Warm("a.example", 2);
  // Expired 59 s ago: still stale data (the refresh is waited for).
  Advance(absl::Seconds(61));
  EXPECT_FALSE(Ask("a.example"));
  transport_.FailOldest(absl::UnavailableError("down"));
  EXPECT_EQ(EdeOf(Reply(1)), dns::kEdeStaleAnswer);
  // Past expiry + max_stale: gone, a plain miss.
  Advance(absl::Seconds(2));
  transport_.AnswerProbes(dns::kServFail);
  EXPECT_FALSE(Ask("a.example"));
  transport_.FailOldest(absl::UnavailableError("down"));
  EXPECT_EQ(Reply(2).rcode(), dns::kServFail);

  zone_.max_stale = absl::ZeroDuration();  // stale serving off for the zone
  AdvanceAnsweringProbes(absl::Seconds(10), dns::kNoError);
  Warm("b.example", 2);
  Advance(absl::Seconds(3));
  EXPECT_FALSE(Ask("b.example"));
  EXPECT_EQ(counters_.refreshes.load(), 1u);  // only a.example's; b is a miss now
}

// A refresh a client waits for (the zone healthy) is that client's query:
// client priority in its flow, outside the refresh share, in turn with its
// misses. (Background refreshes wait behind client misses within
// refresh_share: PoolTest covers that.)
TEST_F(ResolverTest, OverTheLimitARefreshAClientWaitsForQueuesLikeItsMisses) {
  pool_options_.limiter = {.initial_limit = 2, .min_limit = 2, .max_limit = 2};
  pool_options_.refresh_share = 0.5;  // background refreshes may fill 1 of the 2 slots
  Make();
  Warm("a.example", 2);
  Warm("b.example", 2);
  Advance(absl::Seconds(3));
  EXPECT_FALSE(Ask("a.example"));      // its refresh takes a slot
  EXPECT_FALSE(Ask("b.example"));      // and the other: the refresh share does not hold a waited-for refresh
  EXPECT_FALSE(Ask("miss.example"));   // no room: it waits
  EXPECT_FALSE(Ask("miss2.example"));  // and after it
  ASSERT_EQ(transport_.sent.size(), 2u);
  EXPECT_EQ(counters_.upstream_queued.load(), 2u);
  EXPECT_EQ(counters_.refreshes.load(), 2u);  // still counted as refreshes
  transport_.AnswerOldest(60);  // a's refresh: its slot goes to the first queued miss
  ASSERT_EQ(transport_.sent.size(), 2u);
  EXPECT_EQ(dns::ParseMessage(transport_.sent.back().query)->questions[0].name, *dns::NameFromText("miss.example"));
  transport_.AnswerOldest(60);  // b's refresh: then miss2
  EXPECT_EQ(dns::ParseMessage(transport_.sent.back().query)->questions[0].name, *dns::NameFromText("miss2.example"));
  EXPECT_EQ(counters_.upstream_refused_cap.load(), 0u);
}

TEST_F(ResolverTest, AServfailOfOurOwnMakingIsNeverCached) {
  pool_options_.limiter = {.initial_limit = 1, .min_limit = 1, .max_limit = 1};
  Make();
  EXPECT_FALSE(Ask("first.example"));
  EXPECT_FALSE(Ask("second.example"));  // waits for room
  Advance(pool_options_.queue_timeout);  // no room within the queue timeout
  dns::Message m = Reply(0);
  EXPECT_EQ(m.rcode(), dns::kServFail);
  EXPECT_EQ(EdeOf(m), dns::kEdeNoReachableAuthority);
  EXPECT_EQ(counters_.upstream_queue_timeouts.load(), 1u);
  EXPECT_EQ(counters_.servfail_local.load(), 1u);
  transport_.AnswerOldest(60);
  // Asked again: not a cached SERVFAIL, a query upstream.
  EXPECT_FALSE(Ask("second.example"));
  transport_.AnswerOldest(60);
  EXPECT_EQ(Reply(sink_.replies.size() - 1).rcode(), dns::kNoError);
  EXPECT_EQ(counters_.servfail_cached.load(), 0u);
}

TEST_F(ResolverTest, QpsCapLimitsUpstreamRate) {
  pool_options_.max_qps = 100;
  Make();
  int sent = 0;
  for (int i = 0; i < 50; ++i) {
    if (!Ask("n" + std::to_string(i) + ".example")) ++sent;
  }
  EXPECT_EQ(sent, 10);  // the bucket holds a tenth of a second's worth
  // Spread out over a second, 100 get through, no more.
  for (int i = 0; i < 200; ++i) {
    Advance(absl::Milliseconds(5));
    if (!Ask("m" + std::to_string(i) + ".example")) ++sent;
  }
  EXPECT_GE(sent, 10 + 99);
  EXPECT_LE(sent, 10 + 101);
}

TEST_F(ResolverTest, DegradedZoneGetsOnlyATrickleOfRefreshes) {
  pool_options_.breaker.failures_to_open = 1000;
  Make();
  for (int i = 0; i < 40; ++i) Warm("s" + std::to_string(i) + ".example", 2);
  Advance(absl::Seconds(3));
  EXPECT_FALSE(Ask("s0.example"));
  transport_.FailOldest(absl::DeadlineExceededError("blackhole"));  // degraded
  for (int i = 1; i < 40; ++i) {
    auto m = Ask("s" + std::to_string(i) + ".example");
    ASSERT_TRUE(m) << i;  // every one answered at once, stale
    EXPECT_EQ(EdeOf(*m), dns::kEdeStaleAnswer);
  }
  EXPECT_EQ(transport_.sent.size(), 8u);  // degraded_max_refreshes
}

TEST_F(ResolverTest, SlowButGoodAnswersMakeTheZoneDegraded) {
  Warm("a.example", 2);
  Advance(absl::Seconds(3));
  EXPECT_FALSE(Ask("a.example"));
  Advance(absl::Milliseconds(100));  // stale to the client after its timeout
  Advance(absl::Seconds(6));          // past the degraded hold ...
  transport_.AnswerOldest(2);         // ... the answer finally comes, 6 s late
  EXPECT_EQ(pool_->health(), upstream::Health::kDegraded);
}

TEST_F(ResolverTest, PrefetchRefreshesPopularEntryBeforeExpiryWithJitter) {
  Warm("p.example", 100);
  Advance(absl::Seconds(50));
  ASSERT_TRUE(Ask("p.example"));  // not in the last 10 %: nothing scheduled
  Advance(absl::Seconds(45));     // 5 s left
  ASSERT_TRUE(Ask("p.example"));  // schedules a prefetch within the next 2.5 s
  EXPECT_TRUE(transport_.sent.empty());
  Advance(absl::Milliseconds(2500));
  ASSERT_EQ(transport_.sent.size(), 1u);
  EXPECT_EQ(counters_.prefetches.load(), 1u);
  transport_.AnswerOldest(100);
  Advance(absl::Seconds(10));  // the old entry would have expired by now
  auto m = Ask("p.example");
  ASSERT_TRUE(m);
  EXPECT_EQ(EdeOf(*m), 0xffff);
  EXPECT_GT(m->answers.at(0).ttl, 80u);
}

TEST_F(ResolverTest, LastKnownGoodKeepsPositiveWhileUnhealthy) {
  zone_.last_known_good = true;
  Warm("svc.example", 2);
  Warm("other.example", 2);
  Advance(absl::Seconds(3));
  EXPECT_FALSE(Ask("other.example"));
  transport_.FailOldest(absl::UnavailableError("flapping"));  // degraded now
  auto m = Ask("svc.example");  // degraded: stale now, refresh in background
  ASSERT_TRUE(m);
  transport_.AnswerOldest(60, dns::kNxDomain);  // the recovering control plane lies
  EXPECT_EQ(counters_.last_known_good_kept.load(), 1u);
  AdvanceAnsweringProbes(absl::Seconds(31), dns::kNoError);
  // Healthy again: the NXDOMAIN is believed.
  EXPECT_FALSE(Ask("svc.example"));
  transport_.AnswerOldest(60, dns::kNxDomain);
  EXPECT_EQ(Reply(sink_.replies.size() - 1).rcode(), dns::kNxDomain);
}

}  // namespace
}  // namespace nodedns::resolver
