// UpstreamPool: breakers, probes, health, recovery, reloads (pool_health.cc).
#include "lib/upstream/pool.h"
#include "tests/lib/upstream/pool_fixture.h"

namespace nodedns::upstream {
namespace {

using pool_test::PoolTest;

TEST_F(PoolTest, FailsOverToTheNextServerAndSkipsOpenBreakers) {
  auto p = Make(PoolOptions{});
  ASSERT_EQ(Send(*p), SendResult::kSent);
  ASSERT_EQ(a_.sent.size(), 1u);  // the first server first
  a_.Reply(dns::kServFail);       // a failure: resent to b
  ASSERT_EQ(b_.sent.size(), 1u);
  b_.Reply(dns::kNoError);
  EXPECT_EQ(results, (std::vector<int>{0}));
  EXPECT_EQ(counters_.upstream_failovers.load(), 1u);
  // Two more failures open a's breaker; then everything goes to b.
  for (int i = 0; i < 2; ++i) {
    Send(*p);
    a_.Fail();
    b_.Reply(dns::kNoError);
  }
  EXPECT_EQ(p->servers()[0].state, CircuitBreaker::State::kOpen);
  EXPECT_EQ(p->health(), Health::kDegraded);
  Send(*p);
  EXPECT_TRUE(a_.sent.empty());
  EXPECT_EQ(b_.sent.size(), 1u);
}

TEST_F(PoolTest, FailuresOlderThanTheNewestGoodAnswerAreIgnored) {
  auto p = Make(PoolOptions{});
  for (int i = 0; i < 3; ++i) Send(*p);  // sent during an outage ...
  clock_.Advance(absl::Milliseconds(10));
  Send(*p);                              // ... and one after it ended
  ASSERT_EQ(a_.sent.size(), 4u);
  std::swap(a_.sent.front(), a_.sent.back());
  a_.Reply(dns::kNoError);  // the newest query is answered first
  for (int i = 0; i < 3; ++i) {
    a_.Fail();  // the old ones time out afterwards
    b_.Reply(dns::kNoError);  // (their failover)
  }
  EXPECT_EQ(p->servers()[0].state, CircuitBreaker::State::kClosed);
  EXPECT_EQ(p->servers()[0].consecutive_failures, 0);
  EXPECT_EQ(p->health(), Health::kHealthy);
}

TEST_F(PoolTest, DownWhenEveryBreakerIsOpenAndProbesClose) {
  PoolOptions o;
  o.breaker.failures_to_open = 1;
  auto p = Make(o);
  Send(*p);
  a_.Fail();
  b_.Fail();
  EXPECT_EQ(results, (std::vector<int>{-1}));
  EXPECT_EQ(p->health(), Health::kDown);
  EXPECT_EQ(Send(*p), SendResult::kUnavailable);
  // Probes go out after the jittered interval (<= 200 ms here).
  clock_.Advance(absl::Milliseconds(200));
  timers_.RunDue(clock_.Now());
  ASSERT_EQ(a_.sent.size(), 1u);
  ASSERT_EQ(b_.sent.size(), 1u);
  b_.Reply(dns::kNxDomain);  // any real answer closes the breaker
  EXPECT_NE(p->health(), Health::kDown);
  // A probe that is never answered counts as failed after probe_timeout and
  // the next one follows within the backed-off interval.
  clock_.Advance(o.probe_timeout);
  timers_.RunDue(clock_.Now());
  clock_.Advance(absl::Milliseconds(400));
  timers_.RunDue(clock_.Now());
  EXPECT_EQ(a_.sent.size(), 2u);
  EXPECT_EQ(counters_.probes_sent.load(), 3u);
}

TEST_F(PoolTest, ANewPoolIsDegradedUntilItsFirstGoodAnswerAndProbesAtOnce) {
  PoolOptions o;
  auto p = Make(o);
  // nodedns restarted in the middle of an outage knows nothing yet: stale
  // answers go out at once, and the first probe decides.
  EXPECT_EQ(p->health(), Health::kDegraded);
  Advance(o.breaker.probe_min);
  ASSERT_EQ(a_.sent.size(), 1u);
  EXPECT_EQ(counters_.zone_probes_sent.load(), 1u);
  a_.Reply(dns::kNoError);
  EXPECT_EQ(p->health(), Health::kHealthy);
  EXPECT_NE(p->last_good_answer(), absl::InfinitePast());
  EXPECT_EQ(p->limit(), o.limiter.initial_limit);  // a cold start goes out at full speed
  Advance(absl::Seconds(10));
  EXPECT_TRUE(a_.sent.empty());  // nothing more to probe
}

// A process started during an outage: its breakers are closed and the
// queries that would open them take seconds to fail. Found by the policy
// simulation (seed 7222: a restart 11 s into a blackhole, then a burst of
// 112 new names went upstream 64 at a time). The first probe's silence
// starts the zone where an outage's recovery restarts, and its first
// answers slow-start from there.
TEST_F(PoolTest, ANewPoolWhoseFirstProbeGoesUnansweredStartsSmall) {
  PoolOptions o;
  o.limiter = {.initial_limit = 64, .min_limit = 4, .max_limit = 1000};
  auto p = Make(o);
  Advance(o.breaker.probe_min);
  ASSERT_EQ(a_.sent.size(), 1u);  // the zone probe, never answered
  EXPECT_EQ(p->limit(), 64);
  Advance(o.probe_timeout);
  EXPECT_EQ(p->limit(), 4);
  for (uint8_t i = 0; i < 10; ++i) ASSERT_EQ(Send(*p, Priority::kClient, i), SendResult::kSent);
  EXPECT_EQ(a_.sent.size(), 1u + 4u);  // the probe and four misses; six wait
  EXPECT_EQ(p->queued(), 6u);
  a_.sent.pop_front();  // the probe stays unanswered
  // The upstream answers: the four, then the six as room grows.
  Advance(absl::Milliseconds(5));
  for (int i = 0; i < 4; ++i) a_.Reply(dns::kNoError);
  EXPECT_GT(p->limit(), 4);
  EXPECT_EQ(p->queued(), 0u);
  EXPECT_EQ(a_.sent.size(), 6u);
}

// Only a zone that has never answered: one that has answered keeps what it
// learnt when it is next suspect (its breakers and drops decide).
TEST_F(PoolTest, ASuspicionAfterTheFirstAnswerDoesNotRestartTheLimit) {
  PoolOptions o;
  o.limiter = {.initial_limit = 64, .min_limit = 4, .max_limit = 1000};
  auto p = Proven(o);
  p->ReportClientTimeout();
  EXPECT_EQ(p->health(), Health::kDegraded);
  EXPECT_EQ(p->limit(), 64);
}

TEST_F(PoolTest, AFailureStartsZoneProbesUntilAServerAnswersAgain) {
  PoolOptions o;
  o.breaker.failures_to_open = 100;  // no breaker opens: the zone probes find the recovery
  auto p = Proven(o);
  Advance(absl::Milliseconds(1));
  Send(*p);
  a_.Reply(dns::kServFail);
  b_.Reply(dns::kServFail);
  EXPECT_EQ(p->health(), Health::kDegraded);
  absl::Time failed_at = clock_.Now();
  // One probe per interval (200 ms doubling to 1 s, jittered), to the first
  // server whose breaker is closed, while it fails.
  int probes = 0;
  for (int i = 0; i < 40; ++i) {
    Advance(absl::Milliseconds(100));
    while (!a_.sent.empty()) {
      a_.Reply(dns::kServFail);
      ++probes;
    }
  }
  EXPECT_GE(probes, 4);
  EXPECT_LE(probes, 12);
  EXPECT_LT(p->last_good_answer(), failed_at);
  // The upstream is back: the next probe (within a second) finds it.
  for (int i = 0; i < 10 && a_.sent.empty(); ++i) Advance(absl::Milliseconds(100));
  ASSERT_EQ(a_.sent.size(), 1u);
  a_.Reply(dns::kNoError);
  EXPECT_GT(p->last_good_answer(), failed_at);
  EXPECT_EQ(p->health(), Health::kHealthy);
  Advance(absl::Seconds(5));
  EXPECT_TRUE(a_.sent.empty());
}

TEST_F(PoolTest, ARecoveryRestartsTheLimitSmall) {
  PoolOptions o;
  o.breaker.failures_to_open = 1;
  o.limiter = {.initial_limit = 64, .min_limit = 4, .max_limit = 1000};
  auto p = Proven(o);
  EXPECT_EQ(p->limit(), 64);
  Send(*p);
  a_.Fail();
  b_.Fail();  // every breaker open
  ASSERT_EQ(p->health(), Health::kDown);
  Advance(o.breaker.probe_min);
  ASSERT_FALSE(a_.sent.empty());
  a_.Reply(dns::kNoError);  // a's probe: it answers again
  EXPECT_EQ(p->limit(), 4);  // and slow-starts from there
}

// A breaker probe's answer that comes after the probe's deadline (its
// retry's answer, say) closes the breaker, but proves nothing about the
// zone now, which stays degraded. A zone probe must follow at once: the
// open breaker's probes had stood in for zone probes, and without one the
// zone stayed degraded, its clients answered stale, for up to
// degraded_hold. Found by the fleet simulation (seed 264: stale 2.7 s after
// the return).
TEST_F(PoolTest, ABreakerClosedByALateProbeAnswerProbesTheZoneAtOnce) {
  PoolOptions o;
  o.breaker.failures_to_open = 1;
  auto p = Proven(o);
  absl::Time failed_at = clock_.Now();
  Send(*p);
  a_.Fail();
  b_.Fail();  // both breakers open; the zone is down, and degraded for degraded_hold
  ASSERT_EQ(p->health(), Health::kDown);
  Advance(o.breaker.probe_min);
  ASSERT_EQ(a_.sent.size(), 1u);  // a's breaker probe
  Advance(o.probe_timeout);       // past its deadline: abandoned
  a_.Reply(dns::kNoError);        // and answered now
  EXPECT_EQ(p->health(), Health::kDegraded);  // a answers again; the zone is not proven
  Advance(o.breaker.probe_min);
  ASSERT_FALSE(a_.sent.empty()) << "no zone probe after the breaker closed";
  while (!a_.sent.empty()) a_.Reply(dns::kNoError);  // b's probes stay unanswered
  EXPECT_EQ(p->health(), Health::kHealthy);
  EXPECT_LT(clock_.Now() - failed_at, absl::Seconds(2));
  EXPECT_GT(failed_at + o.degraded_hold, clock_.Now());
}

TEST_F(PoolTest, AReloadKeepsWhatTheUpstreamsHaveShown) {
  PoolOptions o;
  o.breaker.failures_to_open = 1;
  auto before = Proven(o);
  for (int i = 0; i < 40; ++i) {
    Send(*before);
    Advance(absl::Milliseconds(30));
    a_.Reply(dns::kNoError);
  }
  absl::Duration timeout = before->client_timeout();
  Send(*before);
  a_.Fail();  // a's breaker opens: b takes over
  b_.Reply(dns::kNoError);
  ASSERT_EQ(before->servers()[0].state, CircuitBreaker::State::kOpen);
  before->CancelQueued();
  Health health = before->health();
  // The reload: a new pool for the same zone and servers, then the old one goes.
  auto after = Make(o);
  after->AdoptState(*before);
  before.reset();
  EXPECT_EQ(after->servers()[0].state, CircuitBreaker::State::kOpen);
  EXPECT_EQ(after->servers()[0].queries, 42u);
  EXPECT_EQ(after->client_timeout(), timeout);
  EXPECT_EQ(after->health(), health);  // degraded by a's failure, as before the reload
  // The open breaker keeps probing in the new pool (and only there).
  Advance(absl::Seconds(1));
  ASSERT_EQ(a_.sent.size(), 1u);
  a_.Reply(dns::kNoError);
  EXPECT_EQ(after->servers()[0].state, CircuitBreaker::State::kClosed);
}

// Found by the simulation (seed 11534): a reload while the old pool's zone
// probe was in flight left the new pool without zone probes until its next
// failure, 3 s later, so clients stayed on stale answers after the upstream
// had returned.
TEST_F(PoolTest, AReloadWhileAZoneProbeIsInFlightKeepsProbing) {
  PoolOptions o;
  o.breaker.failures_to_open = 100;  // no breaker: only zone probes find the recovery
  auto before = Proven(o);
  Advance(absl::Milliseconds(1));
  Send(*before);
  a_.Fail();
  b_.Fail();
  ASSERT_EQ(before->health(), Health::kDegraded);
  // Wait for the zone probe to go out, and reload while it is in flight.
  for (int i = 0; i < 20 && a_.sent.empty(); ++i) Advance(absl::Milliseconds(100));
  ASSERT_EQ(a_.sent.size(), 1u);
  auto after = Make(o);
  after->AdoptState(*before);
  before->CancelQueued();
  a_.sent.clear();  // the old pool's probe is never answered (blackhole)
  before.reset();
  // The upstream is back: the new pool probes within the probe interval.
  int waited_ms = 0;
  for (; waited_ms < 1500 && a_.sent.empty(); waited_ms += 50) Advance(absl::Milliseconds(50));
  ASSERT_EQ(a_.sent.size(), 1u) << "no zone probe from the new pool within 1.5 s";
  EXPECT_EQ(counters_.zone_probes_sent.load(), 2u);
  a_.Reply(dns::kNoError);
  EXPECT_EQ(after->health(), Health::kHealthy);
}

}  // namespace
}  // namespace nodedns::upstream
