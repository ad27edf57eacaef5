#include "lib/common/log_limiter.h"

#include "gtest/gtest.h"
#include "tests/support/fake_clock.h"

namespace nodedns {
namespace {

TEST(LogLimiterTest, BurstThenSilenceThenReportsWhatWasSuppressed) {
  FakeClock clock;
  LogLimiter limiter(absl::Seconds(60), 2);
  uint64_t suppressed = 99;
  EXPECT_TRUE(limiter.Allow(clock.Now(), &suppressed));
  EXPECT_EQ(suppressed, 0u);
  EXPECT_TRUE(limiter.Allow(clock.Now(), &suppressed));
  for (int i = 0; i < 5; ++i) {
    clock.Advance(absl::Seconds(10));
    EXPECT_FALSE(limiter.Allow(clock.Now(), &suppressed));
  }
  clock.Advance(absl::Seconds(10));  // 60 s after the window began
  EXPECT_TRUE(limiter.Allow(clock.Now(), &suppressed));
  EXPECT_EQ(suppressed, 5u);
  EXPECT_TRUE(limiter.Allow(clock.Now(), &suppressed));
  EXPECT_EQ(suppressed, 0u);
}

}  // namespace
}  // namespace nodedns
