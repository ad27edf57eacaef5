// UpstreamPool: sending, the limit, the queue (pool.cc).
#include "lib/upstream/pool.h"
#include "tests/lib/upstream/pool_fixture.h"

namespace nodedns::upstream {
namespace {

using pool_test::PoolTest;

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

}  // namespace
}  // namespace nodedns::upstream
