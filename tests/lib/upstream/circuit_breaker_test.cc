#include "lib/upstream/circuit_breaker.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

#include "gtest/gtest.h"
#include "tests/support/fake_clock.h"

namespace nodedns::upstream {
namespace {

using State = CircuitBreaker::State;

BreakerOptions Options(int failures_to_open, absl::Duration probe_min = absl::Milliseconds(200),
                       absl::Duration probe_max = absl::Seconds(1)) {
  BreakerOptions o;
  o.failures_to_open = failures_to_open;
  o.probe_min = probe_min;
  o.probe_max = probe_max;
  return o;
}

const BreakerOptions kOptions = Options(3);

TEST(CircuitBreakerTest, OpensAfterConsecutiveFailuresAndClosesOnSuccess) {
  CircuitBreaker b(Options(3), 1);
  absl::Time t = absl::FromUnixSeconds(100);
  EXPECT_FALSE(b.OnFailure(t));
  EXPECT_FALSE(b.OnFailure(t));
  EXPECT_FALSE(b.OnSuccess(t));  // resets the count
  EXPECT_FALSE(b.OnFailure(t));
  EXPECT_FALSE(b.OnFailure(t));
  EXPECT_TRUE(b.OnFailure(t));
  EXPECT_EQ(b.state(), CircuitBreaker::State::kOpen);
  EXPECT_FALSE(b.allows_traffic());
  EXPECT_TRUE(b.OnSuccess(t + absl::Seconds(1)));
  EXPECT_TRUE(b.allows_traffic());
  EXPECT_EQ(b.transitions(), 2u);
}

TEST(CircuitBreakerTest, ProbeIntervalBacksOffWithJitterUpToTheCap) {
  BreakerOptions o = Options(1, absl::Milliseconds(200), absl::Seconds(1));
  CircuitBreaker b(o, 42);
  EXPECT_EQ(b.Interval(0), absl::Milliseconds(200));
  EXPECT_EQ(b.Interval(1), absl::Milliseconds(400));
  EXPECT_EQ(b.Interval(2), absl::Milliseconds(800));
  EXPECT_EQ(b.Interval(3), absl::Seconds(1));
  EXPECT_EQ(b.Interval(10), absl::Seconds(1));
  absl::Time t = absl::FromUnixSeconds(100);
  b.OnFailure(t);  // opens; first probe within [100, 200] ms
  absl::Duration first = b.next_probe() - t;
  EXPECT_GE(first, absl::Milliseconds(100));
  EXPECT_LE(first, absl::Milliseconds(200));
  EXPECT_FALSE(b.ProbeDue(t));
  EXPECT_TRUE(b.ProbeDue(b.next_probe()));
  for (int i = 0; i < 8; ++i) b.OnFailure(t);  // failed probes: capped at 1 s
  absl::Duration later = b.next_probe() - t;
  EXPECT_GE(later, absl::Milliseconds(500));
  EXPECT_LE(later, absl::Seconds(1));
  // Two nodes' breakers with different seeds do not probe in step.
  CircuitBreaker c(o, 43);
  c.OnFailure(t);
  for (int i = 0; i < 8; ++i) c.OnFailure(t);
  EXPECT_NE(b.next_probe(), c.next_probe());
}

TEST(CircuitBreakerTest, StartsClosedWithNothingScheduled) {
  CircuitBreaker b(kOptions, 1);
  EXPECT_EQ(b.state(), State::kClosed);
  EXPECT_TRUE(b.allows_traffic());
  EXPECT_EQ(b.transitions(), 0u);
  EXPECT_EQ(b.consecutive_failures(), 0);
  EXPECT_EQ(b.state_since(), absl::InfinitePast());
  // A closed breaker never asks for a probe.
  EXPECT_FALSE(b.ProbeDue(absl::InfiniteFuture()));
}

TEST(CircuitBreakerTest, OpensAtExactlyTheThresholdAndRecordsWhen) {
  FakeClock clock;
  CircuitBreaker b(kOptions, 1);
  EXPECT_FALSE(b.OnFailure(clock.Now()));
  clock.Advance(absl::Milliseconds(10));
  EXPECT_FALSE(b.OnFailure(clock.Now()));
  EXPECT_EQ(b.consecutive_failures(), 2);
  EXPECT_TRUE(b.allows_traffic());
  clock.Advance(absl::Milliseconds(10));
  const absl::Time opened = clock.Now();
  EXPECT_TRUE(b.OnFailure(opened));
  EXPECT_EQ(b.state(), State::kOpen);
  EXPECT_EQ(b.state_since(), opened);
  EXPECT_EQ(b.transitions(), 1u);
  // More failures while open change nothing but the probe schedule.
  clock.Advance(absl::Milliseconds(10));
  EXPECT_FALSE(b.OnFailure(clock.Now()));
  EXPECT_EQ(b.state_since(), opened);
  EXPECT_EQ(b.transitions(), 1u);
  EXPECT_EQ(b.consecutive_failures(), 4);
}

TEST(CircuitBreakerTest, OneFailureOpensWhenTheThresholdIsOne) {
  CircuitBreaker b(Options(1), 1);
  EXPECT_TRUE(b.OnFailure(absl::FromUnixSeconds(1)));
  EXPECT_FALSE(b.allows_traffic());
}

TEST(CircuitBreakerTest, SuccessClosesAndResetsTheBackoff) {
  FakeClock clock;
  CircuitBreaker b(Options(1, absl::Milliseconds(200), absl::Seconds(10)), 7);
  b.OnFailure(clock.Now());
  for (int i = 0; i < 5; ++i) b.OnFailure(clock.Now());  // five failed probes: interval 6.4 s
  EXPECT_GT(b.next_probe() - clock.Now(), absl::Seconds(3));
  clock.Advance(absl::Seconds(2));
  const absl::Time closed = clock.Now();
  EXPECT_TRUE(b.OnSuccess(closed));  // a good answer (probe or not) closes it
  EXPECT_EQ(b.state(), State::kClosed);
  EXPECT_EQ(b.state_since(), closed);
  EXPECT_EQ(b.consecutive_failures(), 0);
  EXPECT_EQ(b.transitions(), 2u);
  EXPECT_FALSE(b.ProbeDue(closed + absl::Hours(1)));
  // Opened again, it starts over from probe_min.
  clock.Advance(absl::Seconds(1));
  EXPECT_TRUE(b.OnFailure(clock.Now()));
  absl::Duration first = b.next_probe() - clock.Now();
  EXPECT_GE(first, absl::Milliseconds(100));
  EXPECT_LE(first, absl::Milliseconds(200));
}

TEST(CircuitBreakerTest, ProbeSentHoldsOffTheNextProbe) {
  FakeClock clock;
  CircuitBreaker b(kOptions, 3);
  for (int i = 0; i < 3; ++i) b.OnFailure(clock.Now());
  ASSERT_EQ(b.state(), State::kOpen);
  clock.Set(b.next_probe());
  ASSERT_TRUE(b.ProbeDue(clock.Now()));
  b.ProbeSent(clock.Now());
  // Not due again until the (unchanged, no failure yet) interval passes.
  EXPECT_FALSE(b.ProbeDue(clock.Now()));
  EXPECT_FALSE(b.ProbeDue(clock.Now() + absl::Milliseconds(99)));
  EXPECT_TRUE(b.ProbeDue(clock.Now() + absl::Milliseconds(200)));
  EXPECT_GE(b.next_probe() - clock.Now(), absl::Milliseconds(100));
  EXPECT_LE(b.next_probe() - clock.Now(), absl::Milliseconds(200));
}

// For many seeds, each failed probe's interval lies in [I(n)/2, I(n)], I(n)
// = min(probe_min * 2^n, probe_max), and the jitter actually spreads.
TEST(CircuitBreakerTest, JitterStaysInBoundsAndSpreads) {
  constexpr int kSeeds = 500;
  constexpr int kSteps = 6;
  absl::Duration lowest[kSteps], highest[kSteps];
  std::fill(std::begin(lowest), std::end(lowest), absl::InfiniteDuration());
  std::fill(std::begin(highest), std::end(highest), absl::ZeroDuration());
  for (uint32_t seed = 1; seed <= kSeeds; ++seed) {
    FakeClock clock;
    CircuitBreaker b(Options(2, absl::Milliseconds(100), absl::Milliseconds(1600)), seed);
    b.OnFailure(clock.Now());
    b.OnFailure(clock.Now());  // opens: step 0
    for (int step = 0; step < kSteps; ++step) {
      if (step > 0) b.OnFailure(clock.Now());  // a failed probe
      absl::Duration full = b.Interval(step);
      absl::Duration d = b.next_probe() - clock.Now();
      ASSERT_GE(d, full / 2) << "seed " << seed << " step " << step;
      ASSERT_LE(d, full) << "seed " << seed << " step " << step;
      lowest[step] = std::min(lowest[step], d);
      highest[step] = std::max(highest[step], d);
      clock.Set(b.next_probe());
      ASSERT_TRUE(b.ProbeDue(clock.Now()));
    }
  }
  for (int step = 0; step < kSteps; ++step) {
    absl::Duration full = absl::Milliseconds(std::min(100 << step, 1600));
    // 500 uniform draws over [full/2, full]: both ends within 5 %.
    EXPECT_LT(lowest[step], full / 2 + full / 20) << step;
    EXPECT_GT(highest[step], full - full / 20) << step;
  }
}

TEST(CircuitBreakerTest, IntervalEdgeCases) {
  // probe_min above probe_max: the cap wins.
  CircuitBreaker inverted(Options(3, absl::Seconds(5), absl::Seconds(1)), 1);
  EXPECT_EQ(inverted.Interval(0), absl::Seconds(1));
  // Many failed probes neither overflow nor pass the cap.
  CircuitBreaker b(kOptions, 1);
  EXPECT_EQ(b.Interval(1000), absl::Seconds(1));
}

TEST(CircuitBreakerTest, AdoptStateCarriesTheStateOver) {
  FakeClock clock;
  CircuitBreaker old_breaker(kOptions, 1);
  for (int i = 0; i < 5; ++i) old_breaker.OnFailure(clock.Now());  // opened, then two failed probes
  ASSERT_EQ(old_breaker.state(), State::kOpen);

  // Reloaded with another probe_max: same state, same schedule, and the
  // next failed probe backs off under the new options.
  CircuitBreaker next(Options(3, absl::Milliseconds(200), absl::Seconds(30)), 2);
  next.AdoptState(old_breaker);
  EXPECT_EQ(next.state(), State::kOpen);
  EXPECT_EQ(next.state_since(), old_breaker.state_since());
  EXPECT_EQ(next.next_probe(), old_breaker.next_probe());
  EXPECT_EQ(next.consecutive_failures(), 5);
  EXPECT_EQ(next.transitions(), 1u);
  next.OnFailure(clock.Now());  // the third failed probe: 200 ms x 2^3
  absl::Duration d = next.next_probe() - clock.Now();
  EXPECT_GE(d, absl::Milliseconds(800));
  EXPECT_LE(d, absl::Milliseconds(1600));
  EXPECT_TRUE(next.OnSuccess(clock.Now()));
  EXPECT_EQ(next.transitions(), 2u);
}

}  // namespace
}  // namespace nodedns::upstream
