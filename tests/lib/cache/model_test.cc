// Property test: random operations on a one-shard cache and on a reference
// model of the policy in cache.h, written for clarity rather than speed
// (a std::deque per list, linear searches, a ghost that is a plain FIFO).
// After every operation both hold the same entries, in the same order and
// tiers, and agree on every lookup and counter.

#include <algorithm>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lib/cache/cache.h"
#include "lib/cache/shard.h"
#include "tests/lib/cache/cache_test_util.h"
#include "tests/support/fake_clock.h"

namespace nodedns::cache {
namespace {

using testing::Image;
using testing::Key;
using testing::NxImage;

class Model {
 public:
  // The lists in the order Cache::ForEach shows them; each front = newest.
  enum List { kKept, kMainPos, kMainNeg, kProbPos, kProbNeg, kLists };
  struct E {
    std::string key;
    bool negative;
    int freq = 0;
    bool served_stale = false;
    int64_t expires, stale_until;
  };
  struct Counts {
    uint64_t inserts = 0, evictions = 0, expired = 0, stale_serving = 0;
  };

  explicit Model(size_t max_entries) : max_(max_entries) {}

  LookupStatus Lookup(const std::string& key, int64_t now) {
    auto [l, i] = Find(key);
    if (l < 0) return LookupStatus::kMiss;
    E& e = lists_[l][i];
    if (Dead(e, now)) {
      lists_[l].erase(lists_[l].begin() + i);
      ++counts_.expired;
      return LookupStatus::kMiss;
    }
    e.freq = std::min(e.freq + 1, 3);
    if (now >= e.expires) e.served_stale = true;
    return now < e.expires ? LookupStatus::kFresh : LookupStatus::kStale;
  }

  void Insert(const std::string& key, bool negative, int64_t now, int64_t ttl_ms, int64_t stale_ms) {
    E e{key, negative, 0, false, now + ttl_ms, now + ttl_ms + stale_ms};
    bool to_main = false;
    auto [l, i] = Find(key);
    if (l >= 0) {
      to_main = l != kProbPos && l != kProbNeg;
      e.freq = lists_[l][i].freq;
      lists_[l].erase(lists_[l].begin() + i);
    } else {
      to_main = GhostTake(Fingerprint(key), std::max<size_t>(1, Size() * 9 / 10));
    }
    while (Size() + 1 > max_ && EvictOne(now)) {
    }
    lists_[to_main ? (negative ? kMainNeg : kMainPos) : (negative ? kProbNeg : kProbPos)].push_front(e);
    ++counts_.inserts;
  }

  void Erase(const std::string& key) {
    auto [l, i] = Find(key);
    if (l >= 0) lists_[l].erase(lists_[l].begin() + i);
  }
  void Clear() {
    for (auto& l : lists_) l.clear();
    ghost_.clear();
  }

  // (key, tier) in Cache::ForEach's order.
  std::vector<std::pair<std::string, Tier>> Entries() const {
    std::vector<std::pair<std::string, Tier>> out;
    for (int l = 0; l < kLists; ++l) {
      Tier t = l == kKept ? Tier::kStaleServing : l <= kMainNeg ? Tier::kMain : Tier::kProbation;
      for (const E& e : lists_[l]) out.emplace_back(e.key, t);
    }
    return out;
  }
  const Counts& counts() const { return counts_; }

 private:
  static uint32_t Fingerprint(const std::string& key) { return internal::Fingerprint(key); }
  static bool Dead(const E& e, int64_t now) { return now >= e.stale_until && now >= e.expires; }
  static bool StaleServing(const E& e, int64_t now) {
    return e.served_stale && now >= e.expires && now < e.stale_until;
  }
  size_t Size() const {
    size_t n = 0;
    for (const auto& l : lists_) n += l.size();
    return n;
  }
  std::pair<int, size_t> Find(const std::string& key) const {
    for (int l = 0; l < kLists; ++l) {
      for (size_t i = 0; i < lists_[l].size(); ++i) {
        if (lists_[l][i].key == key) return {l, i};
      }
    }
    return {-1, 0};
  }

  bool EvictOne(int64_t now) {
    for (int l : {kKept, kProbNeg, kProbPos, kMainNeg, kMainPos}) {
      if (!lists_[l].empty() && Dead(lists_[l].back(), now)) {
        lists_[l].pop_back();
        ++counts_.expired;
        return true;
      }
    }
    for (;;) {
      size_t s = lists_[kProbPos].size() + lists_[kProbNeg].size();
      size_t m = lists_[kMainPos].size() + lists_[kMainNeg].size();
      if (s + m == 0) {
        if (lists_[kKept].empty()) return false;
        lists_[kKept].pop_back();
        ++counts_.stale_serving;
        ++counts_.evictions;
        return true;
      }
      bool from_main = m > 0 && (s == 0 || m * 10 > (s + m) * 9);
      int pos = from_main ? kMainPos : kProbPos, neg = from_main ? kMainNeg : kProbNeg;
      int l = lists_[pos].empty()                                       ? neg
              : lists_[neg].empty()                                     ? pos
              : lists_[neg].back().freq <= lists_[pos].back().freq ? neg
                                                                        : pos;
      E t = lists_[l].back();
      lists_[l].pop_back();
      if (Dead(t, now)) {
        ++counts_.expired;
        return true;
      }
      if (StaleServing(t, now)) {
        lists_[kKept].push_front(t);
        continue;
      }
      if (from_main && t.freq > 0) {
        --t.freq;
        lists_[l].push_front(t);
        continue;
      }
      if (!from_main && t.freq >= 1) {
        t.freq = 0;
        lists_[t.negative ? kMainNeg : kMainPos].push_front(t);
        continue;
      }
      if (!from_main) GhostAdd(Fingerprint(t.key));
      ++counts_.evictions;
      return true;
    }
  }

  // The ghost: the last max_ fingerprints added, oldest first; a taken one
  // is forgotten (every copy of it).
  struct G {
    uint32_t fp;
    bool alive;
  };
  void GhostAdd(uint32_t fp) {
    ghost_.push_back({fp, true});
    if (ghost_.size() > max_) ghost_.pop_front();
  }
  bool GhostTake(uint32_t fp, size_t window) {
    for (size_t i = ghost_.size(); i-- > 0;) {
      if (ghost_[i].fp == fp && ghost_[i].alive) {
        for (G& g : ghost_) {
          if (g.fp == fp) g.alive = false;
        }
        return ghost_.size() - i <= window;
      }
    }
    return false;
  }

  const size_t max_;
  std::deque<E> lists_[kLists];
  std::deque<G> ghost_;
  Counts counts_;
};

void RunSeed(uint32_t seed, int steps) {
  std::mt19937 rng(seed);
  auto pick = [&](auto... v) {
    const int64_t options[] = {v...};
    return options[rng() % sizeof...(v)];
  };
  size_t max_entries = 1 + rng() % 24;
  CacheOptions o;
  o.shards = 1;
  o.max_entries = max_entries;
  auto cache = *Cache::Create(o);
  Model model(max_entries);
  FakeClock clock;
  uint8_t out[4096];
  HitInfo info;
  const int names = static_cast<int>(max_entries) * 3 + 2;

  for (int step = 0; step < steps; ++step) {
    std::string name = "n" + std::to_string(rng() % names) + ".example";
    std::string key = Key(name);
    int64_t now = absl::ToUnixMillis(clock.Now());
    int op = static_cast<int>(rng() % 100);
    std::string what;
    if (op < 40) {
      what = "lookup " + name;
      LookupStatus want = model.Lookup(key, now);
      ASSERT_EQ(cache->Lookup(key, clock.Now(), out, sizeof(out), &info), want) << "seed " << seed << " step " << step;
    } else if (op < 76) {
      bool negative = rng() % 4 == 0;
      int64_t ttl = pick(1, 5, 30, 600);
      int64_t stale = pick(0, 0, 60, 3600);
      what = "insert " + name;
      model.Insert(key, negative, now, ttl * 1000, stale * 1000);
      dns::CacheImage img = negative ? NxImage(name, static_cast<uint32_t>(ttl))
                                     : Image(name, static_cast<uint32_t>(ttl));
      ASSERT_TRUE(cache->Insert(key, img, clock.Now(), absl::Seconds(stale)));
    } else if (op < 81) {
      what = "erase " + name;
      model.Erase(key);
      cache->Erase(key);
    } else if (op < 99) {
      what = "advance";
      clock.Advance(absl::Milliseconds(pick(0, 500, 2000, 10'000, 65'000)));
    } else {
      what = "clear";
      model.Clear();
      cache->Clear();
    }
    std::vector<std::pair<std::string, Tier>> got;
    for (const EntrySummary& e : cache->Summaries()) got.emplace_back(e.key, e.tier);
    ASSERT_EQ(got, model.Entries()) << "seed " << seed << " step " << step << " after " << what;
    const auto& c = cache->counters();
    ASSERT_EQ(c.inserts.load(), model.counts().inserts);
    ASSERT_EQ(c.evictions.load(), model.counts().evictions) << "seed " << seed << " step " << step;
    ASSERT_EQ(c.expired_removed.load(), model.counts().expired) << "seed " << seed << " step " << step;
    ASSERT_EQ(c.stale_serving_evicted.load(), model.counts().stale_serving);
    ASSERT_LE(cache->entries(), max_entries);
  }
}

TEST(CacheModelTest, RandomOperationsMatchTheReferenceModel) {
  for (uint32_t seed = 1; seed <= 80; ++seed) {
    RunSeed(seed, 1000);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace nodedns::cache
