#include "lib/upstream/limiter.h"

#include "gtest/gtest.h"

namespace nodedns::upstream {
namespace {

constexpr absl::Duration kMs = absl::Milliseconds(1);

class LimiterTest : public ::testing::Test {
 protected:
  // `n` good answers of `rtt`, each sent with `inflight` in flight, one per rtt.
  void Samples(ConcurrencyLimiter& l, int n, absl::Duration rtt, int inflight) {
    for (int i = 0; i < n; ++i) {
      now_ += rtt;
      l.OnSample(rtt, inflight, now_);
    }
  }
  absl::Time now_ = absl::UnixEpoch() + absl::Hours(1);
};

TEST_F(LimiterTest, AnIdleLimitDoesNotGrow) {
  ConcurrencyLimiter l(LimiterOptions{.initial_limit = 64});
  Samples(l, 1000, kMs, 3);
  EXPECT_EQ(l.limit(), 64);
}

TEST_F(LimiterTest, SlowStartDoublesPerRoundTripWhileTheLimitIsUsed) {
  ConcurrencyLimiter l(LimiterOptions{.initial_limit = 64, .max_limit = 1000});
  EXPECT_TRUE(l.in_slow_start());
  // One round trip: `limit` answers, each +1.
  Samples(l, 64, kMs, 64);
  EXPECT_EQ(l.limit(), 128);
  Samples(l, 2000, kMs, 1000);
  EXPECT_EQ(l.limit(), 1000);  // the ceiling (max_inflight)
}

TEST_F(LimiterTest, RisingLatencyShrinksTheLimitAtMostHalfPerRoundTrip) {
  LimiterOptions o{.initial_limit = 100, .min_limit = 4, .max_limit = 1000};
  ConcurrencyLimiter l(o);
  Samples(l, 50, kMs, 10);  // baseline 1 ms
  EXPECT_EQ(l.baseline_rtt(), kMs);
  // Within tolerance (2 x 1 ms + 20 ms slack): no change.
  Samples(l, 50, 21 * kMs, 10);
  EXPECT_EQ(l.limit(), 100);
  // The upstream queues: 100 ms. One decrease per current round trip, each by
  // at most half, never below min_limit.
  now_ += 100 * kMs;
  l.OnSample(100 * kMs, 100, now_);  // the average moves to about 36.8 ms
  int after_one = l.limit();
  EXPECT_LT(after_one, 100);
  EXPECT_GE(after_one, 50);
  l.OnSample(100 * kMs, 100, now_);  // same moment: no second decrease
  EXPECT_EQ(l.limit(), after_one);
  Samples(l, 200, 100 * kMs, 100);
  EXPECT_EQ(l.limit(), 4);
  // Latency back to normal: slow start back up to initial_limit (100) ...
  Samples(l, 30, kMs, 100);  // the average settles
  EXPECT_TRUE(l.in_slow_start());
  while (l.in_slow_start()) Samples(l, 1, kMs, 1000);
  EXPECT_EQ(l.limit(), 100);
  // ... then additive growth, about one per round trip.
  Samples(l, 100 * 10, kMs, 1000);
  EXPECT_GE(l.limit(), 109);
  EXPECT_LE(l.limit(), 111);
}

TEST_F(LimiterTest, DropsHalveTheLimitAtMostOncePerInterval) {
  ConcurrencyLimiter l(LimiterOptions{.initial_limit = 64, .min_limit = 4});
  l.OnDrop(now_);
  EXPECT_EQ(l.limit(), 32);
  l.OnDrop(now_ + 50 * kMs);  // a burst of timeouts from the same moment counts once
  EXPECT_EQ(l.limit(), 32);
  for (int i = 1; i < 4; ++i) l.OnDrop(now_ + i * 100 * kMs);
  EXPECT_EQ(l.limit(), 4);
  EXPECT_FALSE(l.pacing());
}

// A fleet of N nodes keeps N x limit queries at a server that drops: drops
// take the limit below one query in flight, and then the pool starts one
// query per current RTT / limit.
TEST_F(LimiterTest, DropsGoBelowOneQueryInFlightAndPace) {
  ConcurrencyLimiter l(LimiterOptions{.initial_limit = 64, .min_limit = 4, .floor = 0.05});
  Samples(l, 10, 10 * kMs, 1);  // current RTT 10 ms
  EXPECT_EQ(l.pacing_gap(), absl::ZeroDuration());
  for (int i = 1; i <= 4; ++i) l.OnDrop(now_ + i * 100 * kMs);  // 64 -> 4
  l.OnDrop(now_ + 500 * kMs);
  EXPECT_EQ(l.limit(), 2);
  l.OnDrop(now_ + 600 * kMs);
  l.OnDrop(now_ + 700 * kMs);
  EXPECT_TRUE(l.pacing());
  EXPECT_DOUBLE_EQ(l.limit_value(), 0.5);
  EXPECT_EQ(l.limit(), 1);  // one in flight ...
  EXPECT_EQ(l.pacing_gap(), 20 * kMs);  // ... one start per 2 RTTs
  for (int i = 8; i < 20; ++i) l.OnDrop(now_ + i * 100 * kMs);
  EXPECT_DOUBLE_EQ(l.limit_value(), 0.05);  // the floor
  EXPECT_EQ(l.pacing_gap(), 200 * kMs);
  now_ += absl::Seconds(2);
  // Late answers (the server still queues) keep it paced, the gap growing
  // with the RTT up to 1 s.
  Samples(l, 20, 300 * kMs, 1);
  EXPECT_DOUBLE_EQ(l.limit_value(), 0.05);
  EXPECT_EQ(l.pacing_gap(), absl::Seconds(1));
  // A prompt answer: one in flight again, then slow start.
  Samples(l, 1, 10 * kMs, 1);
  EXPECT_FALSE(l.pacing());
  EXPECT_EQ(l.limit(), 1);
  Samples(l, 1, 10 * kMs, 1);
  EXPECT_EQ(l.limit(), 2);
}

// Latency is not loss: rising latency cuts to min_limit, not below, and
// does not raise a limit that drops took below it.
// An answer that only a retry got: a loss like a drop, except for an attempt
// sent before the last recovery (lost to the outage, not to congestion now).
TEST_F(LimiterTest, ALossARetryHidIsADropUnlessItWasSentBeforeTheRecovery) {
  ConcurrencyLimiter l(LimiterOptions{.initial_limit = 8, .min_limit = 4, .floor = 0.05, .max_limit = 64});
  absl::Time before_recovery = now_;
  now_ += absl::Seconds(1);
  l.OnLoss(before_recovery, now_);  // no recovery yet: every loss counts
  EXPECT_DOUBLE_EQ(l.limit_value(), 4.0);
  now_ += absl::Seconds(1);
  l.OnRecovery(now_);
  absl::Time recovered = now_;
  EXPECT_DOUBLE_EQ(l.limit_value(), 4.0);
  now_ += absl::Seconds(1);
  l.OnLoss(before_recovery, now_);
  l.OnLoss(recovered - kMs, now_);
  EXPECT_DOUBLE_EQ(l.limit_value(), 4.0);
  l.OnLoss(recovered + kMs, now_);
  EXPECT_DOUBLE_EQ(l.limit_value(), 2.0);
  for (int i = 0; i < 10; ++i) {
    now_ += absl::Milliseconds(100);
    l.OnLoss(now_ - absl::Seconds(1), now_);
  }
  EXPECT_DOUBLE_EQ(l.limit_value(), 0.05);  // down to the floor: paced
  EXPECT_TRUE(l.pacing());
}

TEST_F(LimiterTest, LatencyAloneNeverPaces) {
  ConcurrencyLimiter l(LimiterOptions{.initial_limit = 64, .min_limit = 4, .floor = 0.05});
  Samples(l, 50, kMs, 10);
  Samples(l, 50, 200 * kMs, 64);  // 10 s: the 1 ms baseline is still in the window
  EXPECT_EQ(l.limit(), 4);
  EXPECT_FALSE(l.pacing());
  for (int i = 1; i <= 10; ++i) l.OnDrop(now_ + i * 100 * kMs);
  now_ += absl::Seconds(1);
  double paced = l.limit_value();
  ASSERT_LT(paced, 1);
  l.OnSample(400 * kMs, 1, now_ + absl::Seconds(1));  // slower still: no cut, no growth
  EXPECT_DOUBLE_EQ(l.limit_value(), paced);
  l.OnSample(30 * kMs, 1, now_ + absl::Seconds(2));  // late still (the threshold is 22 ms)
  EXPECT_DOUBLE_EQ(l.limit_value(), paced);
}

TEST_F(LimiterTest, RecoveryRestartsSmallAndSlowStartsUpToTheInitialLimit) {
  ConcurrencyLimiter l(LimiterOptions{.initial_limit = 64, .min_limit = 4, .max_limit = 1000});
  Samples(l, 2000, kMs, 1000);
  ASSERT_EQ(l.limit(), 1000);
  l.OnRecovery(now_);
  EXPECT_EQ(l.limit(), 4);
  // 4 -> 8 -> 16 -> 32 -> 64 in four round trips, then about +1 per round trip.
  int rounds = 0;
  while (l.in_slow_start()) {
    Samples(l, l.limit(), 2 * kMs, l.limit());
    ++rounds;
  }
  EXPECT_EQ(rounds, 4);
  EXPECT_EQ(l.limit(), 64);
  Samples(l, 64 * 3, 2 * kMs, 64);
  EXPECT_GE(l.limit(), 66);
  EXPECT_LE(l.limit(), 68);
}

TEST_F(LimiterTest, TheBaselineFollowsAServerThatBecameSlowerForGood) {
  ConcurrencyLimiter l(LimiterOptions{.initial_limit = 100, .baseline_window = absl::Seconds(30)});
  Samples(l, 100, kMs, 10);
  // Moved further away: 40 ms from now on. The limit shrinks at first ...
  Samples(l, 100, 40 * kMs, 100);
  int shrunk = l.limit();
  EXPECT_LT(shrunk, 100);
  // ... until the 1 ms samples have left the window (30 to 45 s): 40 ms is
  // the new baseline and the limit grows again.
  Samples(l, 2000, 40 * kMs, 100);
  EXPECT_EQ(l.baseline_rtt(), 40 * kMs);
  EXPECT_GT(l.limit(), shrunk);
}

TEST_F(LimiterTest, AReloadKeepsWhatWasLearntWithinTheNewBounds) {
  ConcurrencyLimiter before(LimiterOptions{.initial_limit = 64});
  before.OnDrop(now_);
  Samples(before, 10, 3 * kMs, 1);
  ConcurrencyLimiter after(LimiterOptions{.initial_limit = 64, .max_limit = 20});
  after.AdoptState(before);
  EXPECT_EQ(after.limit(), 20);
  EXPECT_EQ(after.baseline_rtt(), 3 * kMs);
}

}  // namespace
}  // namespace nodedns::upstream
