#include "lib/control/stats.h"

#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nodedns::control {
namespace {

using ::testing::HasSubstr;

TEST(HistogramTest, QuantilesInterpolateInsideBucketsLikePrometheus) {
  Counters c;
  for (int i = 0; i < 90; ++i) c.latency.Record(0.0003);  // (0.00025, 0.0005]
  c.latency.Record(0.2, 10);                               // (0.1, 0.25], ten at once
  CounterValues v;
  v.Add(c);
  EXPECT_EQ(v.latency.count(), 100u);
  EXPECT_NEAR(v.latency.Quantile(0.5), 0.00025 + 0.00025 * (50.0 / 90), 1e-9);
  EXPECT_NEAR(v.latency.Quantile(0.99), 0.1 + 0.15 * (9.0 / 10), 1e-9);
  EXPECT_DOUBLE_EQ(MaxBucket(v.latency), 0.25);
  EXPECT_NEAR(v.latency.sum, 90 * 0.0003 + 10 * 0.2, 1e-9);
  HistogramValues empty;
  EXPECT_EQ(empty.Quantile(0.99), 0);
  // Values beyond the last bound land in +Inf and report the last bound.
  Counters big;
  big.latency.Record(100);
  CounterValues b;
  b.Add(big);
  EXPECT_DOUBLE_EQ(b.latency.Quantile(0.5), 5);
}

StatsSnapshot Sample() {
  StatsSnapshot s;
  s.version = "0.1.0";
  s.started_at = absl::FromUnixSeconds(1000);
  s.now = absl::FromUnixSeconds(1060);
  Counters c;
  c.queries_udp = 7;
  c.queries_tcp = 3;
  c.cache_hits = 6;
  c.cache_misses = 2;
  c.stale_answers_breaker = 2;
  c.upstream_timeouts = 1;
  c.upstream_servfail = 2;
  c.stale_age.Record(45);
  c.latency.Record(0.001);
  s.counters.Add(c);
  s.cache_entries = 5;
  upstream::UpstreamSummary u;
  u.zone = "cluster.local.";
  u.server = "10.96.0.10:53";
  u.open = true;
  u.state_since = absl::FromUnixSeconds(1050);
  u.queries = 9;
  u.failures = 3;
  s.upstreams.push_back(u);
  return s;
}

TEST(StatsTest, JsonHasTheTotalsOperatorsAskFor) {
  nlohmann::json j = StatsJson(Sample());
  const auto& c = j["counters"];
  EXPECT_EQ(c["queries"], 10);
  EXPECT_EQ(c["cache_hits"], 6);
  EXPECT_EQ(c["cache_misses"], 2);
  EXPECT_EQ(c["stale_answers"], 2);
  EXPECT_EQ(c["upstream_failures"], 3);
  EXPECT_EQ(c["cache_entries"], 5);
  EXPECT_EQ(c["coalesced"], 0);
  EXPECT_DOUBLE_EQ(j["hit_ratio"].get<double>(), 0.75);
  EXPECT_DOUBLE_EQ(j["uptime_seconds"].get<double>(), 60);
  EXPECT_EQ(j["upstreams"][0]["state"], "open");
  EXPECT_DOUBLE_EQ(j["upstreams"][0]["state_seconds"].get<double>(), 10);
  EXPECT_EQ(j["stale_age_seconds"]["count"], 1);
  EXPECT_EQ(j["snapshot"]["age_seconds"], -1);  // never written
}

TEST(StatsTest, PrometheusTextHasHelpTypeAndCumulativeBuckets) {
  std::string text = PrometheusText(Sample());
  EXPECT_THAT(text, HasSubstr("# HELP nodedns_queries_udp_total Queries received over UDP\n"
                              "# TYPE nodedns_queries_udp_total counter\nnodedns_queries_udp_total 7\n"));
  EXPECT_THAT(text, HasSubstr("nodedns_stale_age_seconds_bucket{le=\"30\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("nodedns_stale_age_seconds_bucket{le=\"60\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("nodedns_stale_age_seconds_bucket{le=\"+Inf\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("nodedns_stale_age_seconds_count 1\n"));
  EXPECT_THAT(text, HasSubstr("nodedns_upstream_breaker_open{zone=\"cluster.local.\",server=\"10.96.0.10:53\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("nodedns_upstream_state_seconds{zone=\"cluster.local.\",server=\"10.96.0.10:53\"} 10\n"));
  // Every sample line belongs to a family declared before it.
  std::istringstream in(text);
  std::string line, family;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      family = line.substr(7, line.find(' ', 7) - 7);
    } else if (line[0] != '#') {
      EXPECT_EQ(line.rfind(family, 0), 0u) << line << " outside " << family;
    }
  }
}

}  // namespace
}  // namespace nodedns::control
