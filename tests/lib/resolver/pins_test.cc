// The pin refresher (lib/resolver/pins.h) on a fake clock against a
// transport the test answers: pins resolved at start, refreshed before they
// expire whatever their popularity (jittered, never more often than the
// minimum interval), failures retried later, nothing sent while the zone is
// down, and the entries kept under eviction pressure and through an outage.

#include "lib/resolver/pins.h"

#include <deque>
#include <set>

#include "gtest/gtest.h"
#include "lib/dns/message.h"
#include "lib/dns/name.h"
#include "lib/resolver/resolver.h"
#include "lib/upstream/pool.h"
#include "tests/support/all_counters.h"
#include "tests/support/fake_clock.h"

namespace nodedns::resolver {
namespace {

// Keeps what is sent; answers (an A record with `ttl`) or fails on request.
class Upstream : public upstream::Transport {
 public:
  void Send(absl::Span<const uint8_t> query, upstream::Callback done) override {
    auto q = dns::ParseMessage(query);
    if (q->questions[0].type == dns::kTypeSOA) {
      probes.push_back({std::vector<uint8_t>(query.begin(), query.end()), std::move(done)});
      return;
    }
    sent.push_back({std::vector<uint8_t>(query.begin(), query.end()), std::move(done)});
    names.push_back(dns::NameToText(q->questions[0].name) + "/" + std::to_string(q->questions[0].type));
  }
  // Answers (or fails) everything sent so far.
  void Settle(std::deque<std::pair<std::vector<uint8_t>, upstream::Callback>>& queue, bool ok, uint32_t ttl) {
    auto batch = std::move(queue);
    queue.clear();
    for (auto& [query, done] : batch) {
      if (!ok) {
        done(absl::DeadlineExceededError("timeout"), {});
        continue;
      }
      dns::Message r = *dns::ParseMessage(query);
      r.flags |= dns::kFlagQR | dns::kFlagRA;
      if (r.questions[0].type == dns::kTypeA) {
        r.answers.push_back({r.questions[0].name, dns::kTypeA, dns::kClassIN, ttl, "\x0a\x00\x00\x01"});
      }
      auto wire = dns::WriteMessage(r);
      done(absl::OkStatus(), *wire);
    }
  }
  std::deque<std::pair<std::vector<uint8_t>, upstream::Callback>> sent, probes;
  std::vector<std::string> names;
};

class PinsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cache::CacheOptions co;
    co.max_entries = 64;
    co.shards = 1;
    cache_ = *cache::Cache::Create(co);
    upstream::PoolOptions po;
    po.max_qps = 0;
    po.limiter.initial_limit = po.limiter.max_limit = 1000;
    pool_ = std::make_unique<upstream::UpstreamPool>(
        po, std::vector<upstream::UpstreamPool::ServerSpec>{{"u", &upstream_}}, &clock_, &timers_, &counters_, 3);
    zone_.upstream = pool_.get();
    zone_.max_stale = absl::Hours(24);
    router_.AddZone(*dns::NameFromText("."), &zone_);
    resolver_ = std::make_unique<Resolver>(ResolverOptions{}, cache_.get(), &router_, &clock_, &timers_, &counters_);
  }
  void Pin(std::vector<std::string> names, absl::Duration min_interval, uint64_t seed = 1) {
    // A only: this upstream answers AAAA without an SOA (not cacheable).
    auto keys = PinKeys(names, /*without_aaaa=*/true);
    ASSERT_TRUE(keys.ok());
    std::vector<std::string> cache_keys;
    for (const PinnedKey& k : *keys) cache_keys.push_back(k.key);
    cache_->SetPinned(cache_keys);
    keys_ = *keys;
    pins_ = std::make_unique<PinRefresher>(*keys, resolver_.get(), cache_.get(), &clock_, &timers_, min_interval, seed);
    pins_->Start();
  }
  void Advance(absl::Duration d) {
    for (absl::Duration done; done < d; done += absl::Milliseconds(100)) {
      clock_.Advance(absl::Milliseconds(100));
      timers_.RunDue(clock_.Now());
    }
  }
  bool Cached(const PinnedKey& k, absl::Time* expires = nullptr) {
    absl::Time i, e, s;
    bool have = cache_->Peek(k.key, &i, &e, &s);
    if (expires) *expires = e;
    return have;
  }

  FakeClock clock_;
  TimerQueue timers_;
  AllCounters counters_;
  std::unique_ptr<cache::Cache> cache_;
  Upstream upstream_;
  std::unique_ptr<upstream::UpstreamPool> pool_;
  upstream::Zone zone_;
  upstream::Router router_;
  std::unique_ptr<Resolver> resolver_;
  std::vector<PinnedKey> keys_;
  std::unique_ptr<PinRefresher> pins_;
};

TEST_F(PinsTest, ResolvedAtStartThenRefreshedBeforeExpiryUnasked) {
  std::vector<std::string> names;
  for (int i = 0; i < 10; ++i) names.push_back("svc" + std::to_string(i) + ".cluster.local");
  Pin(names, absl::Seconds(30));
  Advance(absl::Milliseconds(100));
  // At start, nobody having asked: as many as the pool lets a zone it has
  // no answer from yet have at once (upstream.degraded_max_refreshes, 8),
  // the others at their retry, within about 10 s.
  upstream_.Settle(upstream_.sent, true, 300);
  EXPECT_EQ(upstream_.names.size(), 8u);
  Advance(absl::Seconds(13));
  upstream_.Settle(upstream_.sent, true, 300);
  EXPECT_EQ(upstream_.names.size(), 10u);
  for (const PinnedKey& k : keys_) EXPECT_TRUE(Cached(k)) << k.name;
  EXPECT_EQ(counters_.pin_refreshes.load(), 10u);
  // Each is asked again between 75 % and 90 % of its 300 s TTL, before it
  // expires; nothing before.
  Advance(absl::Seconds(211));
  EXPECT_TRUE(upstream_.sent.empty());
  std::set<int> when;
  for (int s = 225; s <= 285; ++s) {
    size_t before = upstream_.sent.size();
    Advance(absl::Seconds(1));
    if (upstream_.sent.size() > before) when.insert(s);
    while (!upstream_.sent.empty()) upstream_.Settle(upstream_.sent, true, 300);
  }
  EXPECT_EQ(upstream_.names.size(), 20u) << "each pin refreshed once before it expired";
  EXPECT_GE(when.size(), 5u) << "the refreshes were not spread (jitter)";
  for (const PinnedKey& k : keys_) {
    absl::Time expires;
    ASSERT_TRUE(Cached(k, &expires));
    EXPECT_GT(expires, clock_.Now() + absl::Seconds(200)) << k.name;
  }
}

TEST_F(PinsTest, ShortTtlsAreRefreshedNoMoreOftenThanTheMinimumInterval) {
  Pin({"svc.example"}, absl::Seconds(30));
  Advance(absl::Milliseconds(100));
  upstream_.Settle(upstream_.sent, true, 5);  // CoreDNS's default TTL
  size_t before = upstream_.names.size();
  Advance(absl::Seconds(29));
  EXPECT_EQ(upstream_.names.size(), before) << "refreshed more often than pin_refresh_min";
  Advance(absl::Seconds(2));
  EXPECT_EQ(upstream_.names.size(), before + 1);
}

TEST_F(PinsTest, FailuresAreRetriedLaterAndTheEntryIsKeptThroughAnOutage) {
  Pin({"svc.example"}, absl::Seconds(30));
  Advance(absl::Milliseconds(100));
  upstream_.Settle(upstream_.sent, true, 60);
  // The upstream stops answering when the refresh is due: the entry stays,
  // expires, and remains servable stale; refreshes are retried, spaced out.
  Advance(absl::Seconds(45));
  size_t sent = upstream_.names.size();
  for (int i = 0; i < 120; ++i) {
    Advance(absl::Seconds(1));
    upstream_.Settle(upstream_.sent, false, 0);
    upstream_.Settle(upstream_.probes, false, 0);
  }
  size_t retries = upstream_.names.size() - sent;
  EXPECT_GE(retries, 2u);
  EXPECT_LE(retries, 120u / 8) << "retried more often than every ~10 s";
  // Cache pressure meanwhile: 500 other names go through a 64-entry cache.
  for (int i = 0; i < 500; ++i) {
    dns::CacheImage img;
    img.cacheable = true;
    img.ttl = 600;
    dns::Message m;
    m.flags = dns::kFlagQR;
    m.questions.push_back({*dns::NameFromText("n" + std::to_string(i) + ".example"), dns::kTypeA, dns::kClassIN});
    img.wire = *dns::WriteMessage(m);
    cache_->Insert("other" + std::to_string(i), img, clock_.Now());
  }
  for (const PinnedKey& k : keys_) {
    absl::Time expires;
    ASSERT_TRUE(Cached(k, &expires)) << k.name << " evicted or dropped during the outage";
    EXPECT_LT(expires, clock_.Now()) << "expected stale by now";
  }
}

TEST_F(PinsTest, PinKeysAreTheStubResolversKeys) {
  auto keys = PinKeys({"Kubernetes.Default.SVC.cluster.local"}, /*without_aaaa=*/true);
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 1u);  // AAAA answered by the zone itself
  EXPECT_EQ((*keys)[0].name, "kubernetes.default.svc.cluster.local.");
  EXPECT_EQ((*keys)[0].qtype, dns::kTypeA);
  EXPECT_EQ(dns::CacheKeyQname((*keys)[0].key), *dns::NameFromText("kubernetes.default.svc.cluster.local"));
  EXPECT_FALSE(dns::CacheKeyDo((*keys)[0].key));
  EXPECT_FALSE(dns::CacheKeyCd((*keys)[0].key));
  EXPECT_FALSE(PinKeys({"bad..name"}, false).ok());
}

}  // namespace
}  // namespace nodedns::resolver
