#include "lib/control/stats.h"

#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nodedns::control {
namespace {

using ::testing::HasSubstr;

TEST(HistogramTest, QuantilesInterpolateInsideBucketsLikePrometheus) {
  LatencyHistogram h;
  for (int i = 0; i < 90; ++i) h.Record(0.0003);  // (0.00025, 0.0005]
  h.Record(0.2, 10);                               // (0.1, 0.25], ten at once
  HistogramValues v;
  v.Add(h);
  EXPECT_EQ(v.count(), 100u);
  EXPECT_NEAR(v.Quantile(0.5), 0.00025 + 0.00025 * (50.0 / 90), 1e-9);
  EXPECT_NEAR(v.Quantile(0.99), 0.1 + 0.15 * (9.0 / 10), 1e-9);
  EXPECT_DOUBLE_EQ(MaxBucket(v), 0.25);
  EXPECT_NEAR(v.sum, 90 * 0.0003 + 10 * 0.2, 1e-9);
  HistogramValues empty;
  EXPECT_EQ(empty.Quantile(0.99), 0);
  // Values beyond the last bound land in +Inf and report the last bound.
  LatencyHistogram big;
  big.Record(100);
  HistogramValues b;
  b.Add(big);
  EXPECT_DOUBLE_EQ(b.Quantile(0.5), 5);
}

StatsSnapshot Sample() {
  StatsSnapshot s;
  s.version = "0.1.0";
  s.started_at = absl::FromUnixSeconds(1000);
  s.now = absl::FromUnixSeconds(1060);
  // As the components would give them (the names are theirs).
  MetricSet& m = s.metrics;
  m.Counter("", "queries_udp", "Queries received over UDP", 7);
  m.Counter("", "queries_tcp", "Queries received over TCP", 3);
  m.Counter("", "cache_hits", "Queries answered from a fresh cache entry", 6);
  m.Counter("", "cache_misses", "Queries not answerable from the cache", 2);
  m.Counter("", "coalesced", "Misses that joined a query in flight", 0);
  m.Counter("", "stale_answers_breaker", "Stale answers: breaker open", 2);
  m.Counter("", "upstream_timeouts", "Upstream queries that timed out", 1);
  m.Counter("", "upstream_servfail", "Upstream answers with SERVFAIL", 2);
  m.Gauge("cache", "entries", "Entries in the cache", 5);
  StaleAgeHistogram age;
  age.Record(45);
  LatencyHistogram latency;
  latency.Record(0.001);
  m.AddHistogram("stale_age_seconds", "stale_age_seconds", "Stale age", age);
  m.AddHistogram("latency_seconds", "query_duration_seconds", "Latency", latency);
  snapshot::AppendKeeperMetrics(s.snapshot, s.now, &m);
  m.Counter("reloads", "count", "Configuration reloads applied", 4, "reloads_total");
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
  EXPECT_EQ(j["snapshot"]["enabled"], false);
  EXPECT_EQ(j["reloads"]["count"], 4);
  EXPECT_EQ(j["cache"]["entries"], 5);
}

TEST(StatsTest, JsonAndPrometheusRenderTheSameExportedSet) {
  StatsSnapshot s = Sample();
  nlohmann::json j = StatsJson(s);
  std::string text = PrometheusText(s);
  ASSERT_GT(s.metrics.metrics().size(), 15u);
  for (const Metric& m : s.metrics.metrics()) {
    const nlohmann::json& group = m.group.empty() ? j["counters"] : j[m.group];
    ASSERT_TRUE(group.contains(m.name)) << m.group << "." << m.name;
    if (group[m.name].is_number()) {
      EXPECT_DOUBLE_EQ(group[m.name].get<double>(), m.value) << m.name;
    }
    EXPECT_THAT(text, HasSubstr("# HELP " + m.PromName() + " " + m.help + "\n")) << m.name;
    EXPECT_THAT(text, HasSubstr((m.kind == MetricKind::kCounter ? "# TYPE " + m.PromName() + " counter\n"
                                                                : "# TYPE " + m.PromName() + " gauge\n")));
  }
  // Names operators' dashboards already use.
  EXPECT_THAT(text, HasSubstr("\nnodedns_reloads_total 4\n"));
  EXPECT_THAT(text, HasSubstr("\nnodedns_snapshot_enabled 0\n"));
  EXPECT_THAT(text, HasSubstr("\nnodedns_snapshot_entries 0\n"));
  EXPECT_THAT(text, HasSubstr("\nnodedns_cache_entries 5\n"));
  EXPECT_THAT(text, HasSubstr("\nnodedns_query_duration_seconds_count 1\n"));
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
