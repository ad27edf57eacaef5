#include "lib/common/clock.h"

#include <time.h>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/fake_clock.h"

namespace nodedns {
namespace {

TEST(TimeBaseTest, ConvertsDeadlinesBetweenTheClocks) {
  // Steady time is since boot (dates in 1970); wall time is a real date.
  FakeClock steady(absl::UnixEpoch() + absl::Hours(5));
  FakeWallClock wall(absl::FromUnixSeconds(1'800'000'000));
  TimeBase base = TimeBase::Now(steady, wall);
  EXPECT_EQ(base.steady, steady.Now());
  EXPECT_EQ(base.wall, wall.Now());

  absl::Time expiry = steady.Now() + absl::Minutes(10);
  EXPECT_EQ(base.ToWall(expiry), wall.Now() + absl::Minutes(10));
  EXPECT_EQ(base.ToSteady(base.ToWall(expiry)), expiry);
  // Deadlines in the past convert alike.
  EXPECT_EQ(base.ToWall(steady.Now() - absl::Hours(1)), wall.Now() - absl::Hours(1));

  // After a restart: another boot (steady origin) and a wall clock that moved
  // on. A deadline written at the old base lands as far ahead of the new
  // steady now as it was of the wall clock.
  absl::Time written = base.ToWall(expiry);
  FakeClock steady2(absl::UnixEpoch() + absl::Seconds(30));
  wall.Advance(absl::Minutes(4));
  TimeBase later = TimeBase::Now(steady2, wall);
  EXPECT_EQ(later.ToSteady(written), steady2.Now() + absl::Minutes(6));
}

TEST(TimeBaseTest, InfiniteTimesStayInfinite) {
  TimeBase base{absl::UnixEpoch() + absl::Hours(1), absl::FromUnixSeconds(1'800'000'000)};
  EXPECT_EQ(base.ToWall(absl::InfiniteFuture()), absl::InfiniteFuture());
  EXPECT_EQ(base.ToWall(absl::InfinitePast()), absl::InfinitePast());
  EXPECT_EQ(base.ToSteady(absl::InfiniteFuture()), absl::InfiniteFuture());
  EXPECT_EQ(base.ToSteady(absl::InfinitePast()), absl::InfinitePast());
}

TEST(SystemClockTest, SteadyIsBoottimeAndNeverGoesBack) {
  SystemSteadyClock* clock = SystemSteadyClock::Get();
  EXPECT_EQ(clock, SystemSteadyClock::Get());  // one instance
  timespec before;
  clock_gettime(CLOCK_BOOTTIME, &before);
  absl::Time a = clock->Now();
  absl::Time b = clock->Now();
  timespec after;
  clock_gettime(CLOCK_BOOTTIME, &after);
  EXPECT_LE(a, b);
  EXPECT_GE(a, absl::UnixEpoch() + absl::DurationFromTimespec(before));
  EXPECT_LE(b, absl::UnixEpoch() + absl::DurationFromTimespec(after));
}

TEST(SystemClockTest, WallIsRealtime) {
  SystemWallClock* clock = SystemWallClock::Get();
  EXPECT_EQ(clock, SystemWallClock::Get());
  absl::Time before = absl::Now();
  absl::Time now = clock->Now();
  absl::Time after = absl::Now();
  EXPECT_GE(now, before - absl::Milliseconds(1));
  EXPECT_LE(now, after + absl::Milliseconds(1));
}

}  // namespace
}  // namespace nodedns
