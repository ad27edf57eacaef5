#include "lib/common/metrics.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nodedns {
namespace {

#define TEST_COUNTERS(X)     \
  X(hits, "Hits, counted")   \
  X(misses, "Misses, counted")

struct TestCounters {
  NODEDNS_COUNTER_MEMBERS(TEST_COUNTERS)
  LatencyHistogram latency;
};

TEST(MetricSetTest, SumsPerWorkerListsInDeclarationOrder) {
  TestCounters w0, w1;
  Bump(w0.hits, 2);
  Bump(w1.hits, 3);
  Bump(w1.misses);
  RecordLatency(w0.latency, 0, 1'000'000);
  RecordLatency(w1.latency, 0, 1'000'000, 4);
  MetricSet set;
  for (const TestCounters* w : {&w0, &w1}) {
    set.AddCounters("", "", *w);
    set.AddHistogram("latency_seconds", "query_duration_seconds", "Latency", w->latency);
  }
  ASSERT_EQ(set.metrics().size(), 2u);  // summed, not appended twice
  EXPECT_EQ(set.metrics()[0].name, "hits");
  EXPECT_EQ(set.metrics()[1].name, "misses");
  EXPECT_EQ(set.GetCount("", "hits"), 5u);
  EXPECT_EQ(set.GetCount("", "misses"), 1u);
  EXPECT_EQ(set.GetCount("", "absent"), 0u);
  EXPECT_EQ(set.Histogram("latency_seconds").count(), 5u);
  EXPECT_EQ(set.Histogram("absent").count(), 0u);
}

TEST(MetricSetTest, PrefixGroupAndPrometheusNames) {
  TestCounters c;
  MetricSet set;
  set.AddCounters("", "cache_", c);
  set.Gauge("cache", "entries", "Entries", 7);
  set.Counter("reloads", "count", "Reloads", 2, "reloads_total");
  ASSERT_EQ(set.metrics().size(), 4u);
  EXPECT_EQ(set.metrics()[0].PromName(), "nodedns_cache_hits_total");
  EXPECT_EQ(set.metrics()[2].PromName(), "nodedns_cache_entries");  // a gauge: no _total
  EXPECT_EQ(set.metrics()[3].PromName(), "nodedns_reloads_total");   // the name given
  EXPECT_EQ(set.Get("cache", "entries"), 7);
  EXPECT_EQ(set.Get("", "entries"), 0);  // groups are apart
}

}  // namespace
}  // namespace nodedns
