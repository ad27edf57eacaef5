#include "lib/common/periodic_timer.h"

#include <uv.h>

#include <functional>
#include <stdexcept>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/log_capture.h"

namespace nodedns {
namespace {

// libuv timers run on the loop's real clock: these tests take real time,
// with bounds wide enough for a loaded machine.
class PeriodicTimerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(uv_loop_init(&loop_), 0); }
  void TearDown() override {
    timer_.Close();
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }
  void RunUntil(absl::Time deadline, const std::function<bool()>& done = [] { return false; }) {
    while (absl::Now() < deadline && !done()) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      absl::SleepFor(absl::Milliseconds(1));
    }
  }

  uv_loop_t loop_;
  absl::Time start_ = absl::Now();
  std::vector<absl::Duration> runs_;  // since start_
  PeriodicTimer timer_{"test timer", [this] { runs_.push_back(absl::Now() - start_); }};
};

TEST_F(PeriodicTimerTest, RunsEveryPeriod) {
  ASSERT_TRUE(timer_.Init(&loop_).ok());
  EXPECT_EQ(timer_.period(), absl::ZeroDuration());
  start_ = absl::Now();
  timer_.SetPeriod(absl::Milliseconds(50));
  EXPECT_EQ(timer_.period(), absl::Milliseconds(50));
  RunUntil(start_ + absl::Seconds(5), [&] { return runs_.size() >= 3; });
  ASSERT_GE(runs_.size(), 3u);
  EXPECT_GE(runs_[0], absl::Milliseconds(45));
  EXPECT_GE(runs_[2] - runs_[0], absl::Milliseconds(90));
}

TEST_F(PeriodicTimerTest, ANewPeriodCountsFromTheLastRunNotFromNow) {
  ASSERT_TRUE(timer_.Init(&loop_).ok());
  start_ = absl::Now();
  timer_.SetPeriod(absl::Milliseconds(600));
  RunUntil(start_ + absl::Milliseconds(300));
  ASSERT_TRUE(runs_.empty());
  // At about 300 ms: 400 ms from the start, not from now (700 ms).
  timer_.SetPeriod(absl::Milliseconds(400));
  RunUntil(start_ + absl::Seconds(5), [&] { return !runs_.empty(); });
  ASSERT_FALSE(runs_.empty());
  EXPECT_GE(runs_[0], absl::Milliseconds(350));
  EXPECT_LT(runs_[0], absl::Milliseconds(600));
}

TEST_F(PeriodicTimerTest, APeriodAlreadyOverdueRunsAtOnce) {
  ASSERT_TRUE(timer_.Init(&loop_).ok());
  start_ = absl::Now();
  timer_.SetPeriod(absl::Milliseconds(800));
  RunUntil(start_ + absl::Milliseconds(300));
  absl::Time changed = absl::Now();
  timer_.SetPeriod(absl::Milliseconds(100));
  RunUntil(start_ + absl::Seconds(5), [&] { return !runs_.empty(); });
  ASSERT_FALSE(runs_.empty());
  EXPECT_LT(start_ + runs_[0] - changed, absl::Milliseconds(150));
}

TEST_F(PeriodicTimerTest, TheSamePeriodKeepsTheScheduleAndZeroStops) {
  ASSERT_TRUE(timer_.Init(&loop_).ok());
  start_ = absl::Now();
  timer_.SetPeriod(absl::Milliseconds(400));
  RunUntil(start_ + absl::Milliseconds(200));
  timer_.SetPeriod(absl::Milliseconds(400));  // a reload that changed nothing
  RunUntil(start_ + absl::Seconds(5), [&] { return !runs_.empty(); });
  ASSERT_FALSE(runs_.empty());
  EXPECT_LT(runs_[0], absl::Milliseconds(550));

  timer_.SetPeriod(absl::ZeroDuration());
  EXPECT_EQ(timer_.period(), absl::ZeroDuration());
  size_t before = runs_.size();
  RunUntil(absl::Now() + absl::Milliseconds(600));
  EXPECT_EQ(runs_.size(), before);
}

TEST_F(PeriodicTimerTest, AnExceptionIsLoggedAndTheTimerGoesOn) {
  nodedns::testing::LogCapture log;
  int calls = 0;
  PeriodicTimer throwing("snapshot", [&] {
    ++calls;
    throw std::runtime_error("disk on fire");
  });
  ASSERT_TRUE(throwing.Init(&loop_).ok());
  throwing.SetPeriod(absl::Milliseconds(10));
  RunUntil(absl::Now() + absl::Seconds(5), [&] { return calls >= 2; });
  EXPECT_GE(calls, 2);
  EXPECT_THAT(log.text(), ::testing::HasSubstr("snapshot: unexpected error: disk on fire"));
  throwing.Close();
  throwing.SetPeriod(absl::Milliseconds(5));  // closed: ignored
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_EQ(throwing.period(), absl::Milliseconds(10));
}

}  // namespace
}  // namespace nodedns
