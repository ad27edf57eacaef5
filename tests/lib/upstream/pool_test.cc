#include "lib/upstream/pool.h"
#include "tests/support/all_counters.h"
#include "tests/support/fake_clock.h"

#include <deque>

#include "gtest/gtest.h"
#include "lib/dns/constants.h"
#include "lib/dns/query_view.h"
#include "lib/dns/writers.h"

namespace nodedns::upstream {
namespace {

class FakeTransport : public Transport {
 public:
  void Send(absl::Span<const uint8_t> q, Callback done) override {
    sent.push_back({std::vector<uint8_t>(q.begin(), q.end()), std::move(done)});
  }
  void Reply(uint8_t rcode) {
    auto s = std::move(sent.front());
    sent.pop_front();
    std::vector<uint8_t> a = s.first;
    a[2] |= 0x80;
    a[3] = rcode;
    s.second(absl::OkStatus(), a);
  }
  // The answer to the retry of the oldest query: its first attempt, sent
  // when the query was, got no answer; the retry went out `retry_after` later.
  void ReplyToRetry(absl::Time query_sent, absl::Duration retry_after, absl::Time now) {
    timing.sent = query_sent + retry_after;
    timing.received = now;
    timing.earlier_attempts = 1;
    Reply(dns::kNoError);
    timing = {};
  }
  AnswerTiming last_answer() const override { return timing; }
  void Fail() {
    auto s = std::move(sent.front());
    sent.pop_front();
    s.second(absl::DeadlineExceededError("t"), {});
  }
  std::deque<std::pair<std::vector<uint8_t>, Callback>> sent;
  AnswerTiming timing;
};

class PoolTest : public ::testing::Test {
 protected:
  std::unique_ptr<UpstreamPool> Make(PoolOptions o) {
    return std::make_unique<UpstreamPool>(
        o, std::vector<UpstreamPool::ServerSpec>{{"a", &a_}, {"b", &b_}}, &clock_, &timers_, &counters_, 3);
  }
  SendResult Send(UpstreamPool& p, Priority prio = Priority::kClient, uint8_t tag = 0, FlowId flow = 7) {
    // "<tag>." tells queries apart in the transports' queues.
    std::string name = {1, static_cast<char>('a' + tag), 0};
    std::vector<uint8_t> q(dns::kMaxQuerySize);
    q.resize(dns::WriteQuery(name, dns::kTypeA, dns::kClassIN, false, false, q.data()));
    return p.Send(q, prio, flow, [this, tag](const absl::Status& s, absl::Span<const uint8_t> answer) {
      results.push_back(s.ok() && answer.size() >= 4 ? answer[3] & 0x0f : -1);
      codes.push_back(s.code());
      done_tags.push_back(tag);
    });
  }
  void Advance(absl::Duration d) {
    clock_.Advance(d);
    timers_.RunDue(clock_.Now());
  }
  // A pool that has had its first good answer (a new pool is degraded and
  // probes at once).
  std::unique_ptr<UpstreamPool> Proven(PoolOptions o) {
    auto p = Make(o);
    Send(*p);
    a_.Reply(dns::kNoError);
    results.clear();
    codes.clear();
    done_tags.clear();
    return p;
  }
  FakeClock clock_;
  TimerQueue timers_;
  AllCounters counters_;
  FakeTransport a_, b_;
  std::vector<int> results;
  std::vector<absl::StatusCode> codes;
  std::vector<uint8_t> done_tags;  // the tag of each completed query, in order
};

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

TEST_F(PoolTest, ClientTimeoutAdaptsToLatency) {
  auto p = Make(PoolOptions{});
  EXPECT_EQ(p->client_timeout(), absl::Milliseconds(400));  // no samples yet: initial_client_timeout
  auto answer_after = [&](absl::Duration d) {
    Send(*p);
    clock_.Advance(d);
    a_.Reply(dns::kNoError);
  };
  for (int i = 0; i < 50; ++i) answer_after(absl::Milliseconds(30));
  EXPECT_EQ(p->client_timeout(), absl::Milliseconds(120));  // 4 x p99
  // Latency that rises within the current timeout is followed...
  for (int i = 0; i < 100; ++i) answer_after(absl::Milliseconds(100));
  EXPECT_EQ(p->p99_latency(), absl::Milliseconds(100));
  EXPECT_EQ(p->client_timeout(), absl::Milliseconds(400));
  EXPECT_EQ(p->health(), Health::kHealthy);
  // ... but an answer slower than a client would wait is no sample (retries
  // and overload must not stretch the timeout); it degrades the zone.
  answer_after(absl::Seconds(1));
  EXPECT_EQ(p->client_timeout(), absl::Milliseconds(400));
  EXPECT_EQ(p->health(), Health::kDegraded);
  // A prompt answer to a query sent after that ends the degraded state.
  clock_.Advance(absl::Milliseconds(1));
  answer_after(absl::Milliseconds(100));
  EXPECT_EQ(p->health(), Health::kHealthy);
  auto fast = Make(PoolOptions{});
  for (int i = 0; i < 100; ++i) {
    Send(*fast);
    clock_.Advance(absl::Microseconds(300));
    a_.Reply(dns::kNoError);
  }
  EXPECT_EQ(fast->client_timeout(), absl::Milliseconds(50));  // the floor
  PoolOptions fixed;
  fixed.client_timeout = absl::Milliseconds(250);
  EXPECT_EQ(Make(fixed)->client_timeout(), absl::Milliseconds(250));
}

TEST_F(PoolTest, GarbageWithOurIdIsAFailureNotAnAnswer) {
  PoolOptions o;
  auto p = Make(o);
  Send(*p);
  auto s = std::move(a_.sent.front());
  a_.sent.pop_front();
  std::vector<uint8_t> garbage(40, 0);
  garbage[0] = s.first[0];
  garbage[1] = s.first[1];
  garbage[2] = 0x80;  // QR, NOERROR, and then nothing that answers our question
  s.second(absl::OkStatus(), garbage);
  EXPECT_EQ(p->servers()[0].failures, 1u);
  EXPECT_EQ(p->last_good_answer(), absl::InfinitePast());  // no evidence the zone answers
  EXPECT_EQ(b_.sent.size(), 1u);  // failed over
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
  Advance(absl::Seconds(10));
  EXPECT_TRUE(a_.sent.empty());  // nothing more to probe
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

TEST_F(PoolTest, OverTheLimitQueriesWaitClientsFirstAndFailAfterTheQueueTimeout) {
  PoolOptions o;
  o.limiter = {.initial_limit = 2, .min_limit = 2, .max_limit = 2};
  o.refresh_share = 0.5;
  auto p = Proven(o);
  EXPECT_EQ(Send(*p, Priority::kClient, 1), SendResult::kSent);
  EXPECT_EQ(Send(*p, Priority::kClient, 2), SendResult::kSent);
  EXPECT_EQ(Send(*p, Priority::kRefresh, 3), SendResult::kSent);  // waits
  EXPECT_EQ(Send(*p, Priority::kClient, 4), SendResult::kSent);   // waits, but goes first
  EXPECT_EQ(a_.sent.size(), 2u);
  EXPECT_EQ(p->queued(), 2u);
  a_.Reply(dns::kNoError);
  ASSERT_EQ(a_.sent.size(), 2u);
  EXPECT_EQ(a_.sent.back().first[13], 'a' + 4);  // the client before the refresh
  a_.Reply(dns::kNoError);
  ASSERT_EQ(a_.sent.back().first[13], 'a' + 3);
  // A full limit and a query that finds no room within the queue timeout.
  Send(*p, Priority::kClient, 5);
  EXPECT_EQ(p->queued(), 1u);
  Advance(o.queue_timeout);
  EXPECT_EQ(codes.back(), absl::StatusCode::kResourceExhausted);  // of our own making
  EXPECT_EQ(counters_.upstream_queue_timeouts.load(), 1u);
  EXPECT_EQ(a_.sent.size(), 2u);  // it never went upstream
}

TEST_F(PoolTest, AFloodingClientDoesNotMakeAnotherWaitBehindItsBacklog) {
  PoolOptions o;
  o.limiter = {.initial_limit = 2, .min_limit = 2, .max_limit = 2};
  auto p = Proven(o);
  for (uint8_t i = 1; i <= 20; ++i) EXPECT_EQ(Send(*p, Priority::kClient, i, /*flow=*/100), SendResult::kSent);
  EXPECT_EQ(p->queued(), 18u);
  EXPECT_EQ(Send(*p, Priority::kClient, 25, /*flow=*/200), SendResult::kSent);  // a quiet client's miss
  EXPECT_EQ(p->queued_flows(), 2u);
  // Round robin: the flood's next, then the quiet client's, not the 18 ahead.
  a_.Reply(dns::kNoError);
  a_.Reply(dns::kNoError);
  ASSERT_EQ(a_.sent.size(), 2u);
  EXPECT_EQ(a_.sent[0].first[13], 'a' + 3);
  EXPECT_EQ(a_.sent[1].first[13], 'a' + 25);
}

TEST_F(PoolTest, WithoutTheFairQueueEveryoneWaitsInOneFifo) {
  PoolOptions o;
  o.limiter = {.initial_limit = 2, .min_limit = 2, .max_limit = 2};
  o.fair_queue = false;
  auto p = Proven(o);
  for (uint8_t i = 1; i <= 6; ++i) Send(*p, Priority::kClient, i, 100);
  Send(*p, Priority::kClient, 25, 200);
  for (int i = 0; i < 4; ++i) a_.Reply(dns::kNoError);
  ASSERT_EQ(a_.sent.size(), 2u);
  EXPECT_EQ(a_.sent[1].first[13], 'a' + 6);  // the flood's backlog first
}

TEST_F(PoolTest, AFullQueuePushesOutTheLongestClientsNewestForAClientWithFewer) {
  PoolOptions o;
  o.limiter = {.initial_limit = 1, .min_limit = 1, .max_limit = 1};
  o.max_queue = 4;
  auto p = Proven(o);
  for (uint8_t i = 1; i <= 5; ++i) EXPECT_EQ(Send(*p, Priority::kClient, i, 100), SendResult::kSent);
  EXPECT_EQ(p->queued(), 4u);
  // The flood cannot push out its own; the queue is full for it.
  EXPECT_EQ(Send(*p, Priority::kClient, 6, 100), SendResult::kOverCap);
  // A quiet client's miss takes the flood's newest place ...
  EXPECT_EQ(Send(*p, Priority::kClient, 20, 200), SendResult::kSent);
  EXPECT_EQ(p->queued(), 4u);
  EXPECT_TRUE(codes.empty());  // ... which fails outside Send()
  Advance(absl::ZeroDuration());
  ASSERT_EQ(codes.size(), 1u);
  EXPECT_EQ(codes[0], absl::StatusCode::kResourceExhausted);  // of our own making: never cached
  EXPECT_EQ(done_tags[0], 5);
  EXPECT_EQ(counters_.fair_share_pushed_out.load(), 1u);
  // Up to an even split: flood 3 vs quiet 1 -> once more; 2 vs 2 -> full.
  EXPECT_EQ(Send(*p, Priority::kClient, 21, 200), SendResult::kSent);
  EXPECT_EQ(Send(*p, Priority::kClient, 22, 200), SendResult::kOverCap);
  Advance(absl::ZeroDuration());
  EXPECT_EQ(done_tags.back(), 4);
  EXPECT_EQ(counters_.fair_share_pushed_out.load(), 2u);
  // Everything queued is served in turn: quiet, flood, quiet, flood.
  std::vector<uint8_t> started;
  for (int i = 0; i < 4; ++i) {
    a_.Reply(dns::kNoError);
    started.push_back(static_cast<uint8_t>(a_.sent.back().first[13] - 'a'));
  }
  EXPECT_EQ(started, (std::vector<uint8_t>{2, 20, 3, 21}));
}

TEST_F(PoolTest, AClientMissPushesOutAQueuedRefreshFirst) {
  PoolOptions o;
  o.limiter = {.initial_limit = 2, .min_limit = 2, .max_limit = 2};
  o.max_queue = 1;
  auto p = Proven(o);
  Send(*p, Priority::kClient, 1, 100);
  Send(*p, Priority::kClient, 2, 100);
  EXPECT_EQ(Send(*p, Priority::kRefresh, 3, kNoFlow), SendResult::kSent);  // waits
  EXPECT_EQ(Send(*p, Priority::kClient, 4, 100), SendResult::kSent);        // the refresh gives way
  Advance(absl::ZeroDuration());
  ASSERT_EQ(done_tags.size(), 1u);
  EXPECT_EQ(done_tags[0], 3);
}

TEST_F(PoolTest, QueriesLostInAnOutageStopHoldingTheLimitOnceALaterOneIsAnswered) {
  PoolOptions o;
  o.limiter = {.initial_limit = 2, .min_limit = 2, .max_limit = 2};
  auto p = Proven(o);
  Advance(absl::Milliseconds(1));
  Send(*p, Priority::kClient, 1);
  Send(*p, Priority::kClient, 2);  // both lost in a blackhole that then ends
  Send(*p, Priority::kClient, 3);  // no room: waits
  ASSERT_EQ(a_.sent.size(), 2u);
  p->ReportClientTimeout();  // suspect: the zone is probed
  Advance(o.breaker.probe_min);
  ASSERT_EQ(a_.sent.size(), 3u);
  std::swap(a_.sent.front(), a_.sent.back());
  a_.Reply(dns::kNoError);  // the probe, sent after them, is answered first
  EXPECT_EQ(counters_.upstream_presumed_lost.load(), 2u);
  ASSERT_EQ(a_.sent.size(), 3u);  // the waiting query went out at once
  EXPECT_EQ(a_.sent.back().first[13], 'a' + 3);
  // The lost ones may still come back (or time out): counted once, no harm.
  a_.Fail();
  a_.Fail();
  EXPECT_EQ(p->inflight(), 1u);
}

TEST_F(PoolTest, TheQueueIsBounded) {
  PoolOptions o;
  o.limiter = {.initial_limit = 2, .min_limit = 2, .max_limit = 2};
  o.max_queue = 1;
  auto p = Proven(o);
  Send(*p);
  Send(*p);
  EXPECT_EQ(Send(*p), SendResult::kSent);
  EXPECT_EQ(Send(*p), SendResult::kOverCap);
  EXPECT_EQ(counters_.upstream_refused_cap.load(), 1u);
}

TEST_F(PoolTest, RefreshesOfAZoneThatIsNotHealthyDoNotWait) {
  PoolOptions o;
  o.limiter = {.initial_limit = 2, .min_limit = 2, .max_limit = 2};
  auto p = Proven(o);
  Send(*p);
  a_.Reply(dns::kServFail);  // degraded
  b_.Reply(dns::kNoError);
  ASSERT_EQ(p->health(), Health::kDegraded);
  Send(*p);
  Send(*p);
  EXPECT_EQ(Send(*p, Priority::kRefresh), SendResult::kOverCap);  // no client waits for it
  EXPECT_EQ(Send(*p, Priority::kClient), SendResult::kSent);
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

// Drops took the limit below one query in flight: one at a time, and the
// next starts a pacing gap (current RTT / limit) after the last, even when
// nothing is in flight; a timer starts it.
TEST_F(PoolTest, BelowOneQueryInFlightStartsArePaced) {
  PoolOptions o;
  o.breaker.failures_to_open = 100;
  o.limiter = {.initial_limit = 1, .min_limit = 1, .floor = 0.25, .max_limit = 1};
  auto p = Proven(o);
  Send(*p);
  Advance(absl::Milliseconds(10));
  a_.Reply(dns::kNoError);  // current RTT 10 ms
  Send(*p, Priority::kClient, 1);
  a_.Fail();
  b_.Fail();  // a drop: 1 -> 0.5
  ASSERT_DOUBLE_EQ(p->zone_status().limit, 0.5);
  EXPECT_EQ(Send(*p, Priority::kClient, 2), SendResult::kSent);  // nothing in flight, no gap yet: goes
  EXPECT_EQ(Send(*p, Priority::kClient, 3), SendResult::kSent);  // waits
  ASSERT_EQ(a_.sent.size(), 1u);
  EXPECT_EQ(p->queued(), 1u);
  a_.Fail();
  b_.Fail();  // nothing in flight now, but the gap (10 ms / 0.5) has not passed
  EXPECT_TRUE(a_.sent.empty());
  Advance(absl::Milliseconds(19));
  EXPECT_TRUE(a_.sent.empty());
  Advance(absl::Milliseconds(1));
  ASSERT_EQ(a_.sent.size(), 1u);
  EXPECT_EQ(a_.sent.front().first[13], 'a' + 3);
  EXPECT_EQ(counters_.upstream_paced.load(), 2u);
  // Answered promptly: one in flight again, and pacing ends.
  a_.Reply(dns::kNoError);
  EXPECT_DOUBLE_EQ(p->zone_status().limit, 1.0);
  Send(*p, Priority::kClient, 4);
  Send(*p, Priority::kClient, 5);
  EXPECT_EQ(a_.sent.size(), 1u);  // max_limit 1: one in flight
  a_.Reply(dns::kNoError);
  EXPECT_EQ(a_.sent.size(), 1u);  // the next one at once, no gap
  EXPECT_EQ(counters_.upstream_paced.load(), 2u);
}

// A server that drops under load mostly shows it as answers to retries (the
// retry saves the query). Such an answer is a loss to the limiter, down
// below one query in flight, and not a latency sample; a retry's answer to a
// query sent before the zone recovered is the outage's loss, not a new one.
TEST_F(PoolTest, AnAnswerThatOnlyARetryGotIsALossButNotOneFromBeforeARecovery) {
  PoolOptions o;
  o.breaker.failures_to_open = 1;
  o.limiter = {.initial_limit = 4, .min_limit = 4, .floor = 0.05, .max_limit = 64};
  auto p = Proven(o);
  ASSERT_EQ(p->limit(), 4);
  for (int i = 0; i < 5; ++i) {
    absl::Time sent = clock_.Now();
    Send(*p, Priority::kClient, static_cast<uint8_t>(i));
    ASSERT_EQ(a_.sent.size(), 1u);
    Advance(absl::Milliseconds(1200));  // the retry at 1 s, answered 200 ms later
    a_.ReplyToRetry(sent, absl::Seconds(1), clock_.Now());
  }
  // 4 -> 2 -> 1 -> 0.5 -> 0.25 -> 0.125: every answer came, the loads did not.
  EXPECT_DOUBLE_EQ(p->zone_status().limit, 0.125);
  EXPECT_EQ(counters_.upstream_retry_answered.load(), 5u);
  EXPECT_EQ(counters_.breaker_opened.load(), 0u);

}

// An outage: X is in flight when Y's failures open both breakers; the
// probe's answer ends the outage; then X's retry is answered. X's first
// attempt was lost to the outage: no new loss.
TEST_F(PoolTest, ARetryAnsweredAfterARecoveryIsNoNewLoss) {
  PoolOptions o;
  o.breaker.failures_to_open = 1;
  o.limiter = {.initial_limit = 4, .min_limit = 4, .floor = 0.05, .max_limit = 64};
  auto p = Proven(o);
  Send(*p, Priority::kClient, 8);  // Y
  Send(*p, Priority::kClient, 9);  // X
  ASSERT_EQ(a_.sent.size(), 2u);
  absl::Time x_sent = clock_.Now();
  a_.Fail();  // Y on a, then on b
  b_.Fail();
  ASSERT_EQ(p->health(), Health::kDown);
  Advance(o.breaker.probe_min);
  ASSERT_EQ(a_.sent.size(), 2u);  // X, then a's probe
  a_.sent.push_back(std::move(a_.sent.front()));
  a_.sent.pop_front();
  a_.Reply(dns::kNoError);  // the probe: a answers again, the limit restarts at 4
  ASSERT_EQ(p->limit(), 4);
  Advance(absl::Milliseconds(100));
  a_.ReplyToRetry(x_sent, absl::Seconds(1), clock_.Now());
  EXPECT_EQ(p->limit(), 4);
  EXPECT_EQ(counters_.upstream_retry_answered.load(), 1u);
  ASSERT_EQ(done_tags.size(), 2u);
  EXPECT_EQ(done_tags.back(), 9);
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
