#include "lib/upstream/fair_queue.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace nodedns::upstream {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000);

TEST(FairQueueTest, FlowsAreServedRoundRobinAndEachInItsOwnOrder) {
  FairQueue<std::string> q;
  for (int i = 0; i < 5; ++i) q.Push(1, kT0 + absl::Milliseconds(i), "flood" + std::to_string(i));
  q.Push(2, kT0 + absl::Milliseconds(10), "quiet0");
  q.Push(3, kT0 + absl::Milliseconds(11), "other0");
  q.Push(2, kT0 + absl::Milliseconds(12), "quiet1");
  EXPECT_EQ(q.size(), 8u);
  EXPECT_EQ(q.flows(), 3u);
  std::vector<std::string> order;
  while (!q.empty()) order.push_back(q.PopNext());
  EXPECT_EQ(order, (std::vector<std::string>{"flood0", "quiet0", "other0", "flood1", "quiet1", "flood2", "flood3",
                                             "flood4"}));
  EXPECT_EQ(q.flows(), 0u);
}

TEST(FairQueueTest, ExpiryTakesTheOldestWhateverItsFlow) {
  FairQueue<int> q;
  q.Push(1, kT0 + absl::Seconds(1), 10);
  q.Push(2, kT0 + absl::Seconds(2), 20);
  q.Push(1, kT0 + absl::Seconds(3), 11);
  EXPECT_EQ(q.next_deadline(), kT0 + absl::Seconds(1));
  EXPECT_FALSE(q.PopExpired(kT0).has_value());
  EXPECT_EQ(q.PopExpired(kT0 + absl::Seconds(2)), 10);
  EXPECT_EQ(q.PopExpired(kT0 + absl::Seconds(2)), 20);
  EXPECT_FALSE(q.PopExpired(kT0 + absl::Seconds(2)).has_value());
  EXPECT_EQ(q.flows(), 1u);  // flow 2 is forgotten once empty
  EXPECT_EQ(q.next_deadline(), kT0 + absl::Seconds(3));
  EXPECT_EQ(q.PopNext(), 11);
  EXPECT_EQ(q.next_deadline(), absl::InfiniteFuture());
}

TEST(FairQueueTest, TheLongestFlowGivesUpItsNewest) {
  FairQueue<int> q;
  for (int i = 0; i < 4; ++i) q.Push(1, kT0, i);
  q.Push(2, kT0, 100);
  ASSERT_EQ(q.longest(), 1u);
  EXPECT_EQ(q.PopNewest(1), 3);
  EXPECT_EQ(q.flow_size(1), 3u);
  EXPECT_EQ(q.PopNewest(2), 100);
  EXPECT_EQ(q.flow_size(2), 0u);
  EXPECT_EQ(q.flows(), 1u);
  // Order and deadlines survive removals from the middle.
  EXPECT_EQ(q.PopNext(), 0);
  EXPECT_EQ(q.PopNext(), 1);
  EXPECT_EQ(q.PopNext(), 2);
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.longest().has_value());
}

TEST(FairQueueTest, ManyShortLivedFlowsKeepTheRingBounded) {
  // Flows that come and go by expiry, with nothing ever started (a stuck
  // limit), beside one that always has entries: their stale ring slots must
  // not pile up.
  FairQueue<int> q;
  for (int i = 1; i <= 100000; ++i) {
    absl::Time t = kT0 + absl::Milliseconds(i);
    q.Push(0, t, 0);
    q.Push(static_cast<uint64_t>(i), t, i);
    while (q.PopExpired(t - absl::Milliseconds(5))) {
    }
    ASSERT_LE(q.ring_slots(), 2 * q.flows() + 65);
  }
  EXPECT_EQ(q.flow_size(0), 5u);
  EXPECT_EQ(q.flows(), 6u);
  EXPECT_EQ(q.PopNext(), 0);  // round robin still works after the compactions
  EXPECT_EQ(q.PopNext(), 99996);  // the oldest flow still there
}

TEST(FairQueueTest, TakeAllEmptiesInArrivalOrder) {
  FairQueue<int> q;
  q.Push(5, kT0, 1);
  q.Push(6, kT0, 2);
  q.Push(5, kT0, 3);
  auto all = q.TakeAll();
  EXPECT_EQ(std::vector<int>(all.begin(), all.end()), (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.flows(), 0u);
}

}  // namespace
}  // namespace nodedns::upstream
