// The cache is the one structure every worker shares (README, "Threading"):
// several threads insert, look up, refresh, erase and scan it at once, as
// workers, dnsctl (dump, flush) and a snapshot write on the thread pool do.
// Under ThreadSanitizer (NODEDNS_TSAN, scripts/test.sh) this is the check
// that every shard field is touched only under its lock; in every build it
// checks that the cache-wide limits and counts hold afterwards.

#include <atomic>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "lib/cache/cache.h"
#include "lib/snapshot/snapshot.h"
#include "tests/lib/cache/cache_test_util.h"

namespace nodedns::cache {
namespace {

using testing::Image;
using testing::Key;
using testing::NxImage;

constexpr int kNames = 3000;

std::string Name(int i) { return "n" + std::to_string(i) + ".example"; }

TEST(CacheConcurrencyTest, LimitsAndCountsHoldUnderWorkersAScannerAndAFlush) {
  // Fewer entries than names, so inserts evict (and borrow across shards).
  auto cache = Cache::Create({.max_entries = 1000, .max_bytes = 256 << 10, .shards = 8});
  ASSERT_TRUE(cache.ok()) << cache.status();
  Cache& c = **cache;
  std::vector<std::string> keys;
  std::vector<dns::CacheImage> images;
  for (int i = 0; i < kNames; ++i) {
    keys.push_back(Key(Name(i)));
    images.push_back(i % 4 == 0 ? NxImage(Name(i), 60) : Image(Name(i), 1 + i % 5, 1 + i % 3));
  }
  const absl::Time t0 = absl::UnixEpoch() + absl::Hours(1000);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> hits{0};

  auto worker = [&](uint32_t seed) {
    std::mt19937 rng(seed);
    uint8_t buf[4096];
    HitInfo info;
    for (int op = 0; op < 12000; ++op) {
      size_t i = rng() % kNames;
      // Time moves forward a little per operation: entries expire, are
      // served stale, and die (their TTLs are 1 to 5 s).
      absl::Time now = t0 + absl::Milliseconds(op);
      switch (rng() % 8) {
        case 0:
        case 1:
        case 2:
          c.Insert(keys[i], images[i], now, absl::Seconds(2));
          break;
        case 3:
          c.MarkRefreshFailed(keys[i], now);
          break;
        case 4:
          if (rng() % 16 == 0) c.Erase(keys[i]);
          break;
        default:
          if (c.Lookup(keys[i], now, buf, sizeof(buf), &info) != LookupStatus::kMiss) {
            hits.fetch_add(1, std::memory_order_relaxed);
          }
      }
    }
  };
  // dnsctl and the snapshot keeper: scans, sizes, a flush of a name, and the
  // snapshot's serialization (the thread-pool write's ForEach).
  auto scanner = [&] {
    const snapshot::Moment moment = snapshot::Moment::Now();
    int round = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      size_t seen = 0;
      c.ForEach([&](const EntryView& e) { seen += e.image.empty() ? 0 : 1; });
      EXPECT_LE(c.entries(), 1000u + 4);  // concurrent inserts may overshoot by one each
      (void)c.bytes();
      (void)c.Summaries();
      size_t n = 0;
      (void)snapshot::Serialize(c, moment, &n);
      c.EraseName(*dns::NameFromText(Name(round % kNames)));
      if (++round % 50 == 0) c.Clear();
    }
  };

  std::vector<std::thread> threads;
  for (uint32_t w = 0; w < 4; ++w) threads.emplace_back(worker, 17 + w);
  std::thread scan(scanner);
  for (auto& t : threads) t.join();
  stop = true;
  scan.join();

  EXPECT_GT(hits.load(), 0u);
  // At rest, no limit is exceeded, and the counts agree with the content.
  EXPECT_LE(c.entries(), 1000u);
  EXPECT_LE(c.bytes(), size_t{256} << 10);
  size_t counted = 0, bytes = 0;
  c.ForEach([&](const EntryView& e) {
    ++counted;
    bytes += e.image.size();
  });
  EXPECT_EQ(counted, c.entries());
  EXPECT_LE(bytes, c.bytes());
  EXPECT_GT(c.counters().inserts.load(), 0u);
  EXPECT_GT(c.counters().evictions.load(), 0u);
}

}  // namespace
}  // namespace nodedns::cache
