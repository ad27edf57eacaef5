// The eviction policy and the capacity (cache.h): admission, promotion,
// eviction order, the order of precedence, exact capacity, concurrency.

#include <algorithm>
#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "lib/cache/cache.h"
#include "tests/lib/cache/cache_test_util.h"
#include "tests/support/fake_clock.h"

namespace nodedns::cache {
namespace {

using testing::Image;
using testing::Key;
using testing::NxImage;

std::string Name(const std::string& prefix, int i) { return prefix + std::to_string(i) + ".example"; }

class PolicyTest : public ::testing::Test {
 protected:
  std::unique_ptr<Cache> Make(size_t max_entries, size_t shards = 1) {
    CacheOptions o;
    o.max_entries = max_entries;
    o.shards = shards;
    return *Cache::Create(o);
  }
  LookupStatus Ask(Cache& c, const std::string& name) {
    return c.Lookup(Key(name), clock_.Now(), out_, sizeof(out_), &info_);
  }
  bool Has(Cache& c, const std::string& name) {
    for (const EntrySummary& e : c.Summaries()) {
      if (e.key == Key(name)) return true;
    }
    return false;
  }
  Tier TierOf(Cache& c, const std::string& name) {
    for (const EntrySummary& e : c.Summaries()) {
      if (e.key == Key(name)) return e.tier;
    }
    ADD_FAILURE() << name << " is not cached";
    return Tier::kProbation;
  }
  FakeClock clock_;
  uint8_t out_[4096];
  HitInfo info_;
};

TEST_F(PolicyTest, NewEntriesStartInProbationAndMoveToMainWhenAskedAgain) {
  auto c = Make(10);
  for (int i = 0; i < 10; ++i) c->Insert(Key(Name("a", i)), Image(Name("a", i), 600), clock_.Now());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(TierOf(*c, Name("a", i)), Tier::kProbation);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(Ask(*c, Name("a", i)), LookupStatus::kFresh);
  // Five new names: room comes from the five nobody asked for again, the
  // five asked for move to the main tier on their way out of probation.
  for (int i = 0; i < 5; ++i) c->Insert(Key(Name("b", i)), Image(Name("b", i), 600), clock_.Now());
  EXPECT_EQ(c->entries(), 10u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(TierOf(*c, Name("a", i)), Tier::kMain) << i;
    EXPECT_FALSE(Has(*c, Name("a", i + 5))) << i;
    EXPECT_EQ(TierOf(*c, Name("b", i)), Tier::kProbation) << i;
  }
  EXPECT_EQ(c->counters().evictions.load(), 5u);
}

TEST_F(PolicyTest, NameEvictedFromProbationAndStoredAgainGoesToMain) {
  auto c = Make(4);
  for (int i = 0; i < 6; ++i) c->Insert(Key(Name("a", i)), Image(Name("a", i), 600), clock_.Now());
  ASSERT_FALSE(Has(*c, Name("a", 0)));
  ASSERT_FALSE(Has(*c, Name("a", 1)));
  // a0 is in the ghost (among the last 90 % of 4 evicted): a second miss
  // shows it is not a one-off.
  c->Insert(Key(Name("a", 0)), Image(Name("a", 0), 600), clock_.Now());
  EXPECT_EQ(TierOf(*c, Name("a", 0)), Tier::kMain);
  // A name never seen starts in probation.
  c->Insert(Key(Name("z", 0)), Image(Name("z", 0), 600), clock_.Now());
  EXPECT_EQ(TierOf(*c, Name("z", 0)), Tier::kProbation);
}

TEST_F(PolicyTest, GhostRemembersOnlyRecentEvictions) {
  auto c = Make(4);
  // a0..a3 leave probation in turn as a4..a7 come: a0 is the 4th eviction
  // back, beyond 90 % of the shard's 4 entries.
  for (int i = 0; i < 8; ++i) c->Insert(Key(Name("a", i)), Image(Name("a", i), 600), clock_.Now());
  c->Insert(Key(Name("a", 0)), Image(Name("a", 0), 600), clock_.Now());
  EXPECT_EQ(TierOf(*c, Name("a", 0)), Tier::kProbation);
}

TEST_F(PolicyTest, OneOffFloodDoesNotEvictNamesAskedAgain) {
  auto c = Make(100);
  for (int i = 0; i < 50; ++i) {
    c->Insert(Key(Name("hot", i)), Image(Name("hot", i), 3600), clock_.Now());
    ASSERT_EQ(Ask(*c, Name("hot", i)), LookupStatus::kFresh);
  }
  // 10,000 one-off names, a hundred times the cache: plain LRU would have
  // lost every hot name after 100 of them.
  for (int i = 0; i < 10'000; ++i) c->Insert(Key(Name("once", i)), Image(Name("once", i), 3600), clock_.Now());
  for (int i = 0; i < 50; ++i) EXPECT_EQ(Ask(*c, Name("hot", i)), LookupStatus::kFresh) << i;
  EXPECT_EQ(c->entries(), 100u);
}

TEST_F(PolicyTest, MainTierEvictsTheLeastAskedFirst) {
  auto c = Make(10);
  // Ten names, asked for 1..3 times (a0..a3 once, a4..a6 twice, a7..a9 three times).
  for (int i = 0; i < 10; ++i) {
    c->Insert(Key(Name("a", i)), Image(Name("a", i), 600), clock_.Now());
    int times = i < 4 ? 1 : i < 7 ? 2 : 3;
    for (int t = 0; t < times; ++t) Ask(*c, Name("a", i));
  }
  // The first eviction moves all ten to the main tier (counts cleared),
  // then asks again: a0..a3 not at all, a4..a9 once.
  c->Insert(Key("x0.example"), Image("x0.example", 600), clock_.Now());
  for (int i = 4; i < 10; ++i) Ask(*c, Name("a", i));
  EXPECT_FALSE(Has(*c, Name("a", 0)));  // the main tier gave up its oldest, never asked since
  // y0 takes the place of x0 (a one-hit probationary entry); then each name
  // asked for once moves to the main tier, which gives up the ones not asked
  // for again, a1..a3, before any other.
  for (int i = 0; i < 4; ++i) {
    std::string n = "y" + std::to_string(i) + ".example";
    c->Insert(Key(n), Image(n, 600), clock_.Now());
    Ask(*c, n);
  }
  for (int i = 1; i < 4; ++i) EXPECT_FALSE(Has(*c, Name("a", i))) << i;
  for (int i = 4; i < 10; ++i) EXPECT_TRUE(Has(*c, Name("a", i))) << i;
}

TEST_F(PolicyTest, NegativeAnswersGoBeforePositiveOnesAskedAsOften) {
  auto c = Make(10);
  for (int i = 0; i < 5; ++i) {
    c->Insert(Key(Name("pos", i)), Image(Name("pos", i), 600), clock_.Now());
    c->Insert(Key(Name("nx", i)), NxImage(Name("nx", i), 600), clock_.Now());
  }
  // Five more positives, nobody asked for anything: the negatives go first
  // although the oldest positives were stored before them.
  for (int i = 0; i < 5; ++i) c->Insert(Key(Name("new", i)), Image(Name("new", i), 600), clock_.Now());
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(Has(*c, Name("pos", i))) << i;
    EXPECT_FALSE(Has(*c, Name("nx", i))) << i;
  }
}

TEST_F(PolicyTest, NegativeAskedMoreOftenStaysOverOneHitPositive) {
  auto c = Make(4);
  c->Insert(Key("nx0.example"), NxImage("nx0.example", 600), clock_.Now());
  ASSERT_EQ(Ask(*c, "nx0.example"), LookupStatus::kFresh);
  for (int i = 0; i < 3; ++i) c->Insert(Key(Name("pos", i)), Image(Name("pos", i), 600), clock_.Now());
  c->Insert(Key("new.example"), Image("new.example", 600), clock_.Now());
  EXPECT_TRUE(Has(*c, "nx0.example"));
  EXPECT_FALSE(Has(*c, Name("pos", 0)));
}

TEST_F(PolicyTest, MainTierEvictsNegativeBeforePositiveOnATie) {
  auto c = Make(10);
  for (int i = 0; i < 5; ++i) {
    c->Insert(Key(Name("pos", i)), Image(Name("pos", i), 600), clock_.Now());
    c->Insert(Key(Name("nx", i)), NxImage(Name("nx", i), 600), clock_.Now());
  }
  for (int i = 0; i < 5; ++i) {
    Ask(*c, Name("pos", i));
    Ask(*c, Name("nx", i));
  }
  // All ten move to the main tier; it then gives up one, the negative.
  c->Insert(Key("new.example"), Image("new.example", 600), clock_.Now());
  EXPECT_FALSE(Has(*c, Name("nx", 0)));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(Has(*c, Name("pos", i))) << i;
}

TEST_F(PolicyTest, StaleServingEntriesSurviveEvictionPressure) {
  auto c = Make(20);
  for (int i = 0; i < 5; ++i) {
    c->Insert(Key(Name("down", i)), Image(Name("down", i), 60), clock_.Now(), absl::Hours(1));
  }
  // Expired; answered stale (their zone is down, no refresh replaces them).
  clock_.Advance(absl::Seconds(61));
  for (int i = 0; i < 5; ++i) ASSERT_EQ(Ask(*c, Name("down", i)), LookupStatus::kStale);
  // Heavy pressure from a healthy zone, popular names included.
  for (int i = 0; i < 2000; ++i) {
    c->Insert(Key(Name("up", i)), Image(Name("up", i), 3600), clock_.Now());
    if (i % 3 == 0) Ask(*c, Name("up", i));
    if (i % 7 == 0) Ask(*c, Name("up", i / 2));
  }
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Ask(*c, Name("down", i)), LookupStatus::kStale) << i;
    EXPECT_EQ(TierOf(*c, Name("down", i)), Tier::kStaleServing) << i;
  }
  EXPECT_EQ(c->counters().stale_serving_evicted.load(), 0u);
  EXPECT_EQ(c->entries(), 20u);
  // A refresh makes it an ordinary (main tier) entry again.
  c->Insert(Key(Name("down", 0)), Image(Name("down", 0), 60), clock_.Now(), absl::Hours(1));
  EXPECT_EQ(TierOf(*c, Name("down", 0)), Tier::kMain);
}

TEST_F(PolicyTest, ExpiredButNotServedStaleIsNotProtected) {
  auto c = Make(5);
  c->Insert(Key("idle.example"), Image("idle.example", 60), clock_.Now(), absl::Hours(1));
  clock_.Advance(absl::Seconds(61));
  for (int i = 0; i < 5; ++i) c->Insert(Key(Name("up", i)), Image(Name("up", i), 3600), clock_.Now());
  EXPECT_FALSE(Has(*c, "idle.example"));
}

TEST_F(PolicyTest, StaleServingEntriesGoLastLongestKeptFirst) {
  auto c = Make(3);
  for (int i = 0; i < 3; ++i) {
    c->Insert(Key(Name("down", i)), Image(Name("down", i), 60), clock_.Now(), absl::Hours(1));
  }
  clock_.Advance(absl::Seconds(61));
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Ask(*c, Name("down", i)), LookupStatus::kStale);
  // Nothing else left: one of them must go, the first one kept.
  c->Insert(Key("up.example"), Image("up.example", 3600), clock_.Now());
  EXPECT_EQ(c->entries(), 3u);
  EXPECT_EQ(c->counters().stale_serving_evicted.load(), 1u);
  EXPECT_FALSE(Has(*c, Name("down", 0)));
  EXPECT_TRUE(Has(*c, Name("down", 1)));
  EXPECT_TRUE(Has(*c, Name("down", 2)));
}

TEST_F(PolicyTest, DeadEntriesAtATailGoFirstWhateverTheirPopularity) {
  auto c = Make(3);
  c->Insert(Key("dead.example"), Image("dead.example", 10), clock_.Now());
  for (int i = 0; i < 3; ++i) Ask(*c, "dead.example");
  c->Insert(Key("a.example"), Image("a.example", 600), clock_.Now());
  c->Insert(Key("b.example"), Image("b.example", 600), clock_.Now());
  clock_.Advance(absl::Seconds(11));
  c->Insert(Key("c.example"), Image("c.example", 600), clock_.Now());
  EXPECT_FALSE(Has(*c, "dead.example"));
  EXPECT_TRUE(Has(*c, "a.example"));
  EXPECT_TRUE(Has(*c, "b.example"));
  EXPECT_EQ(c->counters().expired_removed.load(), 1u);
  EXPECT_EQ(c->counters().evictions.load(), 0u);
}

TEST_F(PolicyTest, RefreshKeepsTierAndPopularity) {
  auto c = Make(4);
  for (int i = 0; i < 4; ++i) c->Insert(Key(Name("a", i)), Image(Name("a", i), 600), clock_.Now());
  Ask(*c, Name("a", 0));
  c->Insert(Key(Name("a", 0)), Image(Name("a", 0), 600), clock_.Now());  // refreshed: still asked once
  // Refreshed entries go to the head of their queue: a1..a3 leave first,
  // then a0 reaches the tail and moves to the main tier (a fresh entry,
  // never asked for, would have been evicted), and b leaves instead.
  for (const char* n : {"b.example", "c.example", "d.example", "e.example"}) {
    c->Insert(Key(n), Image(n, 600), clock_.Now());
  }
  EXPECT_EQ(TierOf(*c, Name("a", 0)), Tier::kMain);
  for (int i = 1; i < 4; ++i) EXPECT_FALSE(Has(*c, Name("a", i))) << i;
  EXPECT_FALSE(Has(*c, "b.example"));
}

TEST_F(PolicyTest, ExactCapacityDefaultOptions) {
  auto c = *Cache::Create(CacheOptions{});  // 100,000 entries, 16 shards
  constexpr int kNames = 100'000;
  dns::CacheImage img = Image("n.example", 3600);
  std::vector<std::string> keys;
  for (int i = 0; i < kNames; ++i) keys.push_back(Key("n" + std::to_string(i) + ".example"));
  for (const auto& k : keys) ASSERT_TRUE(c->Insert(k, img, clock_.Now()));
  EXPECT_EQ(c->entries(), size_t{kNames});
  EXPECT_EQ(c->counters().evictions.load(), 0u);
  // Asked again in order, in reverse and shuffled: no miss.
  std::vector<std::string> order = keys;
  std::mt19937 rng(16);
  for (int round = 0; round < 3; ++round) {
    if (round == 1) std::reverse(order.begin(), order.end());
    if (round == 2) std::shuffle(order.begin(), order.end(), rng);
    int misses = 0;
    for (const auto& k : order) misses += c->Lookup(k, clock_.Now(), out_, sizeof(out_), &info_) == LookupStatus::kMiss;
    EXPECT_EQ(misses, 0) << "round " << round;
  }
  // One more name: one entry goes, the cache stays at its capacity.
  c->Insert(Key("extra.example"), img, clock_.Now());
  EXPECT_EQ(c->entries(), size_t{kNames});
  EXPECT_EQ(c->counters().evictions.load(), 1u);
}

TEST_F(PolicyTest, ShardsBorrowRoom) {
  // One entry per shard on average: hashing alone would leave several
  // shards over and others empty.
  auto c = Make(16, 16);
  dns::CacheImage img = Image("n.example", 3600);
  for (int i = 0; i < 16; ++i) c->Insert(Key(Name("n", i)), img, clock_.Now());
  EXPECT_EQ(c->entries(), 16u);
  EXPECT_EQ(c->counters().evictions.load(), 0u);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(Ask(*c, Name("n", i)), LookupStatus::kFresh) << i;
  for (int i = 16; i < 200; ++i) {
    c->Insert(Key(Name("n", i)), img, clock_.Now());
    ASSERT_EQ(c->entries(), 16u) << i;
  }
}

TEST_F(PolicyTest, BytesBoundTheWholeCache) {
  CacheOptions o;
  o.shards = 4;
  o.max_bytes = 4 * 4096;
  auto c = *Cache::Create(o);
  for (int i = 0; i < 500; ++i) {
    c->Insert(Key(Name("n", i)), Image(Name("n", i), 600, 3), clock_.Now());
    ASSERT_LE(c->bytes(), o.max_bytes) << i;
  }
  // Full within one entry's footprint, not within a shard's share.
  size_t one = c->bytes() / c->entries();
  EXPECT_GT(c->bytes() + 2 * one, o.max_bytes);
}

TEST_F(PolicyTest, ConcurrentInsertsLookupsAndErasesKeepTheBounds) {
  auto c = Make(256, 16);
  dns::CacheImage img = Image("n.example", 3600);
  std::vector<std::thread> threads;
  std::atomic<int> hits{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      uint8_t out[512];
      HitInfo info;
      std::mt19937 rng(t);
      for (int i = 0; i < 20'000; ++i) {
        std::string k = Key(Name("n", static_cast<int>(rng() % 1000)));
        switch (rng() % 8) {
          case 0:
          case 1:
            c->Insert(k, img, clock_.Now());
            break;
          case 2:
            c->Erase(k);
            break;
          default:
            hits += c->Lookup(k, clock_.Now(), out, sizeof(out), &info) == LookupStatus::kFresh;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_GT(hits.load(), 0);
  EXPECT_LE(c->entries(), 256u);
  // At rest, the next inserts fill it exactly: nothing was lost in the counts.
  for (int i = 0; i < 300; ++i) c->Insert(Key(Name("fill", i)), img, clock_.Now());
  EXPECT_EQ(c->entries(), 256u);
  EXPECT_EQ(c->Summaries().size(), 256u);
}

TEST_F(PolicyTest, PinnedEntriesSurviveEvictionPressureAndLeaveOnlyDead) {
  auto c = Make(20, 4);
  std::vector<std::string> pins = {Key("pin0.example"), Key("pin1.example"), Key("pin2.example")};
  c->SetPinned(pins);
  for (int i = 0; i < 3; ++i) {
    std::string n = "pin" + std::to_string(i) + ".example";
    ASSERT_TRUE(c->Insert(Key(n), Image(n, 60), clock_.Now(), absl::Hours(1)));
    EXPECT_EQ(TierOf(*c, n), Tier::kPinned);
  }
  // Thousands of names asked for again and again, and stale-serving ones:
  // every other entry goes, the pinned ones stay.
  for (int i = 0; i < 5000; ++i) {
    c->Insert(Key(Name("flood", i)), Image(Name("flood", i), 600), clock_.Now());
    Ask(*c, Name("flood", i));
    Ask(*c, Name("flood", i));
  }
  EXPECT_LE(c->entries(), 20u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(Has(*c, "pin" + std::to_string(i) + ".example")) << i;
  // Expired and served stale (an outage): still kept, still pinned.
  clock_.Advance(absl::Seconds(120));
  EXPECT_EQ(Ask(*c, "pin0.example"), LookupStatus::kStale);
  for (int i = 0; i < 100; ++i) c->Insert(Key(Name("more", i)), Image(Name("more", i), 600), clock_.Now());
  EXPECT_EQ(TierOf(*c, "pin0.example"), Tier::kPinned);
  // A refresh keeps the tier.
  ASSERT_TRUE(c->Insert(Key("pin0.example"), Image("pin0.example", 60), clock_.Now(), absl::Hours(1)));
  EXPECT_EQ(TierOf(*c, "pin0.example"), Tier::kPinned);
  // Past the stale window an entry cannot be served: pinned or not, it goes.
  clock_.Advance(absl::Hours(2));
  for (int i = 0; i < 100; ++i) c->Insert(Key(Name("late", i)), Image(Name("late", i), 600), clock_.Now());
  EXPECT_FALSE(Has(*c, "pin1.example"));
}

TEST_F(PolicyTest, SetPinnedMovesEntriesPresentBothWays) {
  auto c = Make(10);
  for (int i = 0; i < 10; ++i) c->Insert(Key(Name("a", i)), Image(Name("a", i), 600), clock_.Now());
  c->SetPinned({Key(Name("a", 3))});
  EXPECT_EQ(TierOf(*c, Name("a", 3)), Tier::kPinned);
  for (int i = 0; i < 50; ++i) c->Insert(Key(Name("b", i)), Image(Name("b", i), 600), clock_.Now());
  EXPECT_TRUE(Has(*c, Name("a", 3)));
  EXPECT_EQ(c->entries(), 10u);
  // Unpinned, it is an ordinary entry of the main tier again, and can go.
  c->SetPinned({});
  EXPECT_EQ(TierOf(*c, Name("a", 3)), Tier::kMain);
  for (int i = 0; i < 50; ++i) {
    c->Insert(Key(Name("c", i)), Image(Name("c", i), 600), clock_.Now());
    Ask(*c, Name("c", i));  // promoted on its way out of probation: the main tier fills
  }
  EXPECT_FALSE(Has(*c, Name("a", 3)));
  // Peek sees deadlines without counting an access.
  absl::Time ins, exp, until;
  ASSERT_TRUE(c->Peek(Key(Name("c", 49)), &ins, &exp, &until));
  EXPECT_EQ(exp - ins, absl::Seconds(600));
  EXPECT_FALSE(c->Peek(Key("absent.example"), &ins, &exp, &until));
}

}  // namespace
}  // namespace nodedns::cache
