#include "lib/cache/cache.h"

#include <limits>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/fake_clock.h"
#include "lib/dns/message.h"
#include "lib/dns/name.h"
#include "lib/dns/query_view.h"
#include "tests/lib/cache/cache_test_util.h"

namespace nodedns::cache {
namespace {

using dns::CacheImage;
using testing::Image;
using testing::Key;

class CacheTest : public ::testing::Test {
 protected:
  std::unique_ptr<Cache> Make(CacheOptions o = {}) { return *Cache::Create(o); }
  FakeClock clock_;
  uint8_t out_[65536];
  HitInfo info_;
};

TEST_F(CacheTest, MissThenFreshHitCopiesImage) {
  auto c = Make();
  EXPECT_EQ(c->Lookup(Key("a.example"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kMiss);
  CacheImage img = Image("a.example", 60);
  ASSERT_TRUE(c->Insert(Key("a.example"), img, clock_.Now()));
  ASSERT_EQ(c->Lookup(Key("A.EXAMPLE"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kFresh);
  EXPECT_TRUE(info_.copied);
  EXPECT_EQ(info_.image_len, img.wire.size());
  EXPECT_EQ(0, memcmp(out_, img.wire.data(), img.wire.size()));
  ASSERT_EQ(info_.num_ttls, 1);
  EXPECT_EQ(info_.ttl_offsets[0], img.ttl_offsets[0]);
  EXPECT_EQ(info_.age_seconds, 0u);
  EXPECT_EQ(c->entries(), 1u);
}

TEST_F(CacheTest, AgesAndExpiresWithoutSleeping) {
  auto c = Make();
  c->Insert(Key("a.example"), Image("a.example", 60), clock_.Now());
  clock_.Advance(absl::Seconds(59.5));
  ASSERT_EQ(c->Lookup(Key("a.example"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kFresh);
  EXPECT_EQ(info_.age_seconds, 59u);
  clock_.Advance(absl::Seconds(0.5));
  // max_stale 0: gone at expiry.
  EXPECT_EQ(c->Lookup(Key("a.example"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kMiss);
  EXPECT_EQ(c->entries(), 0u);
  EXPECT_EQ(c->counters().expired_removed.load(), 1u);
}

TEST_F(CacheTest, KeepsStaleWithinMaxStale) {
  auto c = Make();
  c->Insert(Key("a.example"), Image("a.example", 60), clock_.Now(), absl::Hours(1));
  clock_.Advance(absl::Seconds(90));
  ASSERT_EQ(c->Lookup(Key("a.example"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kStale);
  EXPECT_EQ(info_.stale_seconds, 30u);
  EXPECT_EQ(info_.expires_at, clock_.Now() - absl::Seconds(30));
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(c->Lookup(Key("a.example"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kMiss);
}

TEST_F(CacheTest, AgeAndStalenessSaturateInsteadOfWrapping) {
  // Found by the stale-path fuzzer: an entry stored in the infinite past (or
  // more than 136 years ago) had an age that wrapped around 2^32 seconds to a
  // small number, so its records were shown with TTLs that had not aged.
  auto c = Make();
  ASSERT_TRUE(c->InsertWithDeadlines(Key("a.example"), Image("a.example", 60), absl::InfinitePast(),
                                     absl::InfiniteFuture(), clock_.Now(), absl::ZeroDuration()));
  ASSERT_EQ(c->Lookup(Key("a.example"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kFresh);
  EXPECT_EQ(info_.age_seconds, std::numeric_limits<uint32_t>::max());
  ASSERT_TRUE(c->InsertWithDeadlines(Key("b.example"), Image("b.example", 60), absl::InfinitePast(),
                                     clock_.Now() - absl::Hours(24 * 365 * 300), clock_.Now(),
                                     absl::InfiniteDuration()));
  ASSERT_EQ(c->Lookup(Key("b.example"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kStale);
  EXPECT_EQ(info_.age_seconds, std::numeric_limits<uint32_t>::max());
  EXPECT_EQ(info_.stale_seconds, std::numeric_limits<uint32_t>::max());
  // 200 years ago: 6.3e9 seconds, not 6.3e9 mod 2^32.
  absl::Time long_ago = clock_.Now() - absl::Hours(24 * 365 * 200);
  ASSERT_TRUE(c->InsertWithDeadlines(Key("c.example"), Image("c.example", 60), long_ago, long_ago,
                                     clock_.Now(), absl::InfiniteDuration()));
  ASSERT_EQ(c->Lookup(Key("c.example"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kStale);
  EXPECT_EQ(info_.stale_seconds, std::numeric_limits<uint32_t>::max());
}

TEST_F(CacheTest, RefreshFailureIsRecordedAndClearedByReplace) {
  auto c = Make();
  c->Insert(Key("a.example"), Image("a.example", 60), clock_.Now(), absl::Hours(1));
  ASSERT_EQ(c->Lookup(Key("a.example"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kFresh);
  EXPECT_EQ(info_.refresh_failed_at, absl::InfinitePast());
  clock_.Advance(absl::Seconds(70));
  c->MarkRefreshFailed(Key("a.example"), clock_.Now());
  ASSERT_EQ(c->Lookup(Key("a.example"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kStale);
  EXPECT_EQ(info_.refresh_failed_at, clock_.Now());
  EXPECT_EQ(info_.inserted_at, clock_.Now() - absl::Seconds(70));
  c->Insert(Key("a.example"), Image("a.example", 60), clock_.Now(), absl::Hours(1));
  ASSERT_EQ(c->Lookup(Key("a.example"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kFresh);
  EXPECT_EQ(info_.refresh_failed_at, absl::InfinitePast());
}

TEST_F(CacheTest, DoAndCdAreSeparateEntries) {
  auto c = Make();
  c->Insert(Key("a.example", dns::kTypeA, true), Image("a.example", 60), clock_.Now());
  EXPECT_EQ(c->Lookup(Key("a.example"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kMiss);
  EXPECT_EQ(c->Lookup(Key("a.example", dns::kTypeA, false, true), clock_.Now(), out_, sizeof(out_), &info_),
            LookupStatus::kMiss);
  EXPECT_EQ(c->Lookup(Key("a.example", dns::kTypeA, true), clock_.Now(), out_, sizeof(out_), &info_),
            LookupStatus::kFresh);
}

TEST_F(CacheTest, ReplaceKeepsOneEntry) {
  auto c = Make();
  c->Insert(Key("a.example"), Image("a.example", 60), clock_.Now());
  clock_.Advance(absl::Seconds(30));
  c->Insert(Key("a.example"), Image("a.example", 600, 2), clock_.Now());
  EXPECT_EQ(c->entries(), 1u);
  ASSERT_EQ(c->Lookup(Key("a.example"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kFresh);
  EXPECT_EQ(info_.num_ttls, 2);
  EXPECT_EQ(info_.age_seconds, 0u);
}

TEST_F(CacheTest, EvictsOneHitEntryBeforeOneAskedAgain) {
  CacheOptions o;
  o.shards = 1;
  o.max_entries = 3;
  auto c = Make(o);
  for (const char* n : {"a.x", "b.x", "c.x"}) c->Insert(Key(n), Image(n, 60), clock_.Now());
  // a.x is asked for again; b.x is the oldest entry nobody asked for.
  ASSERT_EQ(c->Lookup(Key("a.x"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kFresh);
  c->Insert(Key("d.x"), Image("d.x", 60), clock_.Now());
  EXPECT_EQ(c->entries(), 3u);
  EXPECT_EQ(c->Lookup(Key("b.x"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kMiss);
  EXPECT_EQ(c->Lookup(Key("a.x"), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kFresh);
  EXPECT_EQ(c->counters().evictions.load(), 1u);
}

TEST_F(CacheTest, EvictsByBytes) {
  CacheOptions o;
  o.shards = 1;
  o.max_bytes = 8192;
  auto c = Make(o);
  for (int i = 0; i < 100; ++i) {
    std::string n = "name" + std::to_string(i) + ".example";
    c->Insert(Key(n), Image(n, 60, 4), clock_.Now());
  }
  EXPECT_LE(c->bytes(), 8192u);
  EXPECT_GT(c->entries(), 10u);
  EXPECT_LT(c->entries(), 100u);
  std::string last = "name99.example";
  EXPECT_EQ(c->Lookup(Key(last), clock_.Now(), out_, sizeof(out_), &info_), LookupStatus::kFresh);
}

TEST_F(CacheTest, RejectsUncacheableAndOversize) {
  CacheOptions o;
  o.shards = 1;
  o.max_bytes = 4096;
  auto c = Make(o);
  CacheImage zero = Image("z.x", 0);
  EXPECT_FALSE(c->Insert(Key("z.x"), zero, clock_.Now()));
  EXPECT_FALSE(c->Insert(Key("big.x"), Image("big.x", 60, 300), clock_.Now()));
  EXPECT_EQ(c->counters().rejected_too_large.load(), 1u);
}

TEST_F(CacheTest, ImageLargerThanCapIsNotCopied) {
  auto c = Make();
  CacheImage img = Image("a.example", 60, 40);
  c->Insert(Key("a.example"), img, clock_.Now());
  ASSERT_EQ(c->Lookup(Key("a.example"), clock_.Now(), out_, 100, &info_), LookupStatus::kFresh);
  EXPECT_FALSE(info_.copied);
  EXPECT_EQ(info_.image_len, img.wire.size());
  EXPECT_EQ(0, memcmp(info_.header, img.wire.data(), 12));
}

TEST_F(CacheTest, EraseClearAndSummaries) {
  auto c = Make();
  c->Insert(Key("a.x"), Image("a.x", 60), clock_.Now());
  c->Insert(Key("b.x"), Image("b.x", 60), clock_.Now());
  EXPECT_EQ(c->Summaries().size(), 2u);
  EXPECT_TRUE(c->Erase(Key("a.x")));
  EXPECT_FALSE(c->Erase(Key("a.x")));
  c->Clear();
  EXPECT_EQ(c->entries(), 0u);
  EXPECT_EQ(c->bytes(), 0u);
}

TEST_F(CacheTest, InvalidOptions) {
  CacheOptions o;
  o.shards = 0;
  EXPECT_FALSE(Cache::Create(o).ok());
  o.shards = 16;
  o.max_entries = 4;
  EXPECT_FALSE(Cache::Create(o).ok());
}

TEST_F(CacheTest, ConcurrentReadersAndWriters) {
  CacheOptions o;
  o.max_entries = 512;
  auto c = Make(o);
  std::vector<std::thread> threads;
  std::atomic<int> hits{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      uint8_t out[4096];
      HitInfo info;
      for (int i = 0; i < 5000; ++i) {
        std::string n = "n" + std::to_string((i * 7 + t) % 1000) + ".x";
        if (i % 3 == 0) {
          c->Insert(Key(n), Image(n, 60), clock_.Now());
        } else if (c->Lookup(Key(n), clock_.Now(), out, sizeof(out), &info) == LookupStatus::kFresh) {
          ASSERT_TRUE(info.copied);
          ++hits;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(c->entries(), 512u);
  EXPECT_GT(hits.load(), 0);
}

}  // namespace
}  // namespace nodedns::cache
