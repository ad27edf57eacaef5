#include "lib/common/timer_queue.h"

#include <vector>

#include "gtest/gtest.h"

namespace nodedns {
namespace {

TEST(TimerQueueTest, RunsDueTimersInOrderAndCancels) {
  TimerQueue q;
  absl::Time t0 = absl::FromUnixSeconds(1000);
  std::vector<int> ran;
  std::vector<absl::Time> wakeups;
  q.set_wakeup([&](absl::Time t) { wakeups.push_back(t); });
  q.Add(t0 + absl::Seconds(3), [&] { ran.push_back(3); });
  q.Add(t0 + absl::Seconds(1), [&] { ran.push_back(1); });
  auto id = q.Add(t0 + absl::Seconds(2), [&] { ran.push_back(2); });
  EXPECT_EQ(wakeups.size(), 2u);  // only when the earliest deadline moved earlier
  EXPECT_TRUE(q.Cancel(id));
  EXPECT_FALSE(q.Cancel(id));
  EXPECT_EQ(*q.NextDeadline(), t0 + absl::Seconds(1));
  EXPECT_EQ(q.RunDue(t0), 0);
  EXPECT_EQ(q.RunDue(t0 + absl::Seconds(5)), 2);
  EXPECT_EQ(ran, (std::vector<int>{1, 3}));
  EXPECT_FALSE(q.NextDeadline().has_value());
}

TEST(TimerQueueTest, TimersAddedByCallbacksRunWhenDue) {
  TimerQueue q;
  absl::Time t0 = absl::FromUnixSeconds(1000);
  int count = 0;
  q.Add(t0, [&] {
    ++count;
    q.Add(t0, [&] { ++count; });                    // due now: runs in this pass
    q.Add(t0 + absl::Seconds(1), [&] { ++count; });  // later
  });
  EXPECT_EQ(q.RunDue(t0), 2);
  EXPECT_EQ(count, 2);
  EXPECT_EQ(q.size(), 1u);
}

}  // namespace
}  // namespace nodedns
