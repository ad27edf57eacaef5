#include "lib/common/counters.h"

#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace nodedns {
namespace {

inline constexpr double kBounds[] = {1, 10, 100};
using TestHistogram = Histogram<kBounds, std::size(kBounds)>;

TEST(HistogramTest, BoundsAreInclusiveUpperLimits) {
  TestHistogram h;
  ASSERT_EQ(TestHistogram::kBuckets, 4u);
  h.Record(0);
  h.Record(1);     // "le 1", as Prometheus counts it
  h.Record(1.5);
  h.Record(10);
  h.Record(100.5);  // +Inf
  h.Record(1e12);
  EXPECT_EQ(h.buckets[0].load(), 2u);
  EXPECT_EQ(h.buckets[1].load(), 2u);
  EXPECT_EQ(h.buckets[2].load(), 0u);
  EXPECT_EQ(h.buckets[3].load(), 2u);
  EXPECT_DOUBLE_EQ(h.sum.load(), 0 + 1 + 1.5 + 10 + 100.5 + 1e12);
}

TEST(HistogramTest, RecordWithACount) {
  TestHistogram h;
  h.Record(5, 3);
  EXPECT_EQ(h.buckets[1].load(), 3u);
  EXPECT_DOUBLE_EQ(h.sum.load(), 15);
}

TEST(HistogramValuesTest, AddSumsWorkers) {
  TestHistogram a, b;
  a.Record(0.5);
  b.Record(0.5);
  b.Record(50);
  HistogramValues v;
  EXPECT_EQ(v.count(), 0u);
  v.Add(a);
  v.Add(b);
  EXPECT_EQ(v.bounds, (std::vector<double>{1, 10, 100}));
  EXPECT_EQ(v.buckets, (std::vector<uint64_t>{2, 0, 1, 0}));
  EXPECT_EQ(v.count(), 3u);
  EXPECT_DOUBLE_EQ(v.sum, 51);
}

TEST(HistogramValuesTest, QuantileEdges) {
  HistogramValues v;
  EXPECT_EQ(v.Quantile(0.5), 0);  // no samples
  TestHistogram h;
  h.Record(1000, 10);  // everything in +Inf
  v.Add(h);
  EXPECT_EQ(v.Quantile(0.5), 100);  // the last finite bound
  EXPECT_EQ(v.Quantile(0.99), 100);

  HistogramValues first;
  TestHistogram low;
  low.Record(0.5, 4);  // the first bucket starts at 0
  first.Add(low);
  EXPECT_DOUBLE_EQ(first.Quantile(0.5), 0.5);
  EXPECT_DOUBLE_EQ(first.Quantile(0.25), 0.25);
  EXPECT_DOUBLE_EQ(first.Quantile(1), 1);

  // Empty buckets in between are skipped, not interpolated into.
  HistogramValues gap;
  TestHistogram g;
  g.Record(0.5, 1);
  g.Record(50, 1);
  gap.Add(g);
  EXPECT_DOUBLE_EQ(gap.Quantile(0.75), 10 + 90 * 0.5);
}

TEST(CounterValuesTest, AddAndForEachCoverEveryCounterOnce) {
  Counters w0, w1;
  Bump(w0.queries_udp);
  Bump(w1.queries_udp, 2);
  Bump(w1.tcp_slow_reader_closed);
  RecordLatency(w0, 1'000'000, 1'500'000);  // 0.5 ms
  RecordStaleAge(w1, 42);
  CounterValues v;
  v.Add(w0);
  v.Add(w1);
  EXPECT_EQ(v.queries_udp, 3u);
  EXPECT_EQ(v.tcp_slow_reader_closed, 1u);
  EXPECT_EQ(v.latency.count(), 1u);
  EXPECT_DOUBLE_EQ(v.latency.sum, 0.0005);
  EXPECT_EQ(v.stale_age.count(), 1u);
  EXPECT_DOUBLE_EQ(v.stale_age.sum, 42);

  std::vector<std::string> names;
  std::set<std::string> unique;
  uint64_t total = 0;
  v.ForEach([&](const char* name, const char* help, uint64_t value) {
    names.push_back(name);
    unique.insert(name);
    EXPECT_GT(std::string(help).size(), 10u) << name;
    total += value;
  });
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names.front(), "queries_udp");  // declaration order
  EXPECT_EQ(names.back(), "shed_clients_untracked");
  EXPECT_EQ(unique.size(), names.size());
  EXPECT_EQ(total, 4u);
}

TEST(CountersTest, RecordLatencyCountsABatch) {
  Counters c;
  RecordLatency(c, 0, 2'000'000, 32);  // 2 ms for each of 32 answers
  HistogramValues v;
  v.Add(c.latency);
  EXPECT_EQ(v.count(), 32u);
  EXPECT_NEAR(v.sum, 0.064, 1e-12);
  EXPECT_EQ(v.buckets[5], 32u);  // "le 0.0025"
}

TEST(CountersTest, MonotonicNanosDoesNotGoBack) {
  int64_t a = MonotonicNanos();
  int64_t b = MonotonicNanos();
  EXPECT_GT(a, 0);
  EXPECT_LE(a, b);
}

}  // namespace
}  // namespace nodedns
