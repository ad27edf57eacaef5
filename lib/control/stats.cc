#include "lib/control/stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

namespace nodedns::control {
namespace {

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }


// A steady-clock time as the wall clock shows it now.
std::string Iso8601(const StatsSnapshot& s, absl::Time steady) {
  if (steady == absl::InfinitePast()) return "";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", s.wall_now - (s.now - steady), absl::UTCTimeZone());
}

nlohmann::json HistogramJson(const HistogramValues& h) {
  nlohmann::json buckets = nlohmann::json::array();
  for (size_t i = 0; i < h.buckets.size(); ++i) {
    buckets.push_back({{"le", i < h.bounds.size() ? nlohmann::json(h.bounds[i]) : nlohmann::json("+Inf")},
                       {"count", h.buckets[i]}});
  }
  return {{"count", h.count()},     {"sum", h.sum},
          {"p50", h.Quantile(0.5)}, {"p99", h.Quantile(0.99)},
          {"max_bucket", MaxBucket(h)}, {"buckets", buckets}};
}

// Prometheus text format helpers.
std::string Number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

std::string LabelValue(const std::string& v) {
  std::string out;
  for (char ch : v) {
    if (ch == '\\' || ch == '"') {
      out += '\\';
      out += ch;
    } else if (ch == '\n') {
      out += "\\n";
    } else {
      out += ch;
    }
  }
  return out;
}

class PromWriter {
 public:
  void Family(const std::string& name, const char* type, const std::string& help) {
    out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void Sample(const std::string& name, const std::string& labels, double value) {
    out_ += name;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += " " + Number(value) + "\n";
  }
  void Gauge(const std::string& name, const std::string& help, double value) {
    Family(name, "gauge", help);
    Sample(name, "", value);
  }
  void Counter(const std::string& name, const std::string& help, double value) {
    Family(name, "counter", help);
    Sample(name, "", value);
  }
  void Histogram(const std::string& name, const std::string& help, const HistogramValues& h) {
    Family(name, "histogram", help);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < h.buckets.size(); ++i) {
      cumulative += h.buckets[i];
      std::string le = i < h.bounds.size() ? Number(h.bounds[i]) : "+Inf";
      Sample(name + "_bucket", "le=\"" + le + "\"", static_cast<double>(cumulative));
    }
    Sample(name + "_sum", "", h.sum);
    Sample(name + "_count", "", static_cast<double>(cumulative));
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// A server that never changed state has been in it since start-up.
double StateSeconds(const StatsSnapshot& s, const upstream::UpstreamSummary& u) {
  absl::Time since = u.state_since == absl::InfinitePast() ? s.started_at : std::max(u.state_since, s.started_at);
  return Seconds(s.now - since);
}

// Connection outcomes of an endpoint, by name, for JSON and Prometheus alike.
template <typename F>
void ForEachOutcome(const ConnectionStats& c, F f) {
  f("accepted", c.accepted);
  f("idle_cut", c.idle_cut);
  f("refused", c.refused);
  f("timed_out", c.timed_out);
  f("oversize", c.oversize);
  f("internal_errors", c.internal_errors);
}

nlohmann::json ConnectionsJson(const ConnectionStats& c) {
  nlohmann::json j = nlohmann::json::object();
  ForEachOutcome(c, [&](const char* name, uint64_t v) { j[name] = v; });
  return j;
}

}  // namespace

double MaxBucket(const HistogramValues& h) {
  for (size_t i = h.buckets.size(); i-- > 0;) {
    if (h.buckets[i] == 0) continue;
    return i < h.bounds.size() ? h.bounds[i] : INFINITY;
  }
  return 0;
}

Totals ComputeTotals(const MetricSet& m) {
  auto sum = [&](std::initializer_list<const char*> names) {
    uint64_t n = 0;
    for (const char* name : names) n += m.GetCount("", name);
    return n;
  };
  Totals t;
  t.queries = sum({"queries_udp", "queries_tcp"});
  t.stale_answers =
      sum({"stale_answers_timeout", "stale_answers_failure", "stale_answers_breaker", "stale_answers_over_cap"});
  t.upstream_failures = sum(
      {"upstream_timeouts", "upstream_errors", "upstream_servfail", "upstream_malformed", "upstream_mismatched"});
  uint64_t hits = m.GetCount("", "cache_hits"), lookups = hits + m.GetCount("", "cache_misses");
  t.hit_ratio = lookups == 0 ? 0 : static_cast<double>(hits) / static_cast<double>(lookups);
  return t;
}

nlohmann::json UpstreamsJson(const StatsSnapshot& s) {
  nlohmann::json list = nlohmann::json::array();
  for (const upstream::UpstreamSummary& u : s.upstreams) {
    list.push_back({{"zone", u.zone},
                    {"server", u.server},
                    {"state", u.open ? "open" : "closed"},
                    {"state_seconds", StateSeconds(s, u)},
                    {"workers_open", u.workers_open},
                    {"transitions", u.transitions},
                    {"consecutive_failures", u.consecutive_failures},
                    {"queries", u.queries},
                    {"failures", u.failures},
                    {"srtt_seconds", Seconds(u.srtt)},
                    {"zone_p99_seconds", Seconds(u.zone_p99)},
                    {"zone_health", u.zone_health},
                    {"zone_limit", std::round(u.zone_limit * 100) / 100},
                    {"zone_inflight", u.zone_inflight},
                    {"zone_queued", u.zone_queued}});
  }
  return list;
}

nlohmann::json StatsJson(const StatsSnapshot& s) {
  nlohmann::json j = {
      {"version", s.version},
      {"time", Iso8601(s, s.now)},
      {"uptime_seconds", Seconds(s.now - s.started_at)},
      {"workers", s.workers},
      {"counters", nlohmann::json::object()},
  };
  // The exported set: counters of the data plane under "counters", the
  // others under their group. Integral values print as integers.
  for (const Metric& m : s.metrics.metrics()) {
    nlohmann::json& dest = m.group.empty() ? j["counters"] : j[m.group];
    if (m.value == std::floor(m.value) && std::fabs(m.value) < 9.0e15) {
      dest[m.name] = static_cast<int64_t>(m.value);
    } else {
      dest[m.name] = m.value;
    }
  }
  for (const HistogramMetric& h : s.metrics.histograms()) j[h.json_name] = HistogramJson(h.values);

  // Totals operators ask for first, from the per-outcome counters, and the
  // cache's size next to its counters.
  nlohmann::json& counters = j["counters"];
  Totals t = ComputeTotals(s.metrics);
  counters["queries"] = t.queries;
  counters["stale_answers"] = t.stale_answers;
  counters["upstream_failures"] = t.upstream_failures;
  counters["cache_entries"] = s.metrics.GetCount("cache", "entries");
  counters["cache_bytes"] = s.metrics.GetCount("cache", "bytes");
  j["hit_ratio"] = t.hit_ratio;
  j["upstreams"] = UpstreamsJson(s);

  // What is not a number: paths, errors and times.
  nlohmann::json& snapshot = j["snapshot"];
  snapshot["path"] = s.snapshot.path;
  snapshot["enabled"] = !s.snapshot.path.empty();  // a gauge in Prometheus, a boolean here
  snapshot["last_write"] = Iso8601(s, s.snapshot.last_write);
  snapshot["last_error"] = s.snapshot.last_error;
  snapshot["load_error"] = s.snapshot.load_error;
  j["reloads"]["last"] = Iso8601(s, s.last_reload);
  if (j.contains("supervisor")) j["supervisor"]["last_exit"] = s.supervisor_last_exit;
  j["mirrors"] = nlohmann::json::array();
  for (const mirror::MirrorStatus& m : s.mirrors) {
    j["mirrors"].push_back({{"zone", m.zone},
                            {"serial", m.have_serial ? nlohmann::json(m.serial) : nlohmann::json(nullptr)},
                            {"records", m.records},
                            {"entries", m.entries},
                            {"last_transfer", Iso8601(s, m.last_transfer)},
                            {"last_transfer_age_seconds",
                             m.last_transfer == absl::InfinitePast() ? -1.0 : Seconds(s.now - m.last_transfer)},
                            {"last_error", m.last_error},
                            {"checks", m.checks},
                            {"transfers", m.transfers},
                            {"failures", m.failures},
                            {"deferred", m.deferred}});
  }
  j["connections"] = {{"control", ConnectionsJson(s.control_connections)},
                      {"http", ConnectionsJson(s.http_connections)}};
  if (!s.upstreams_error.empty()) j["upstreams_error"] = s.upstreams_error;
  return j;
}

std::string PrometheusText(const StatsSnapshot& s) {
  PromWriter w;
  w.Family("nodedns_build_info", "gauge", "nodedns version");
  w.Sample("nodedns_build_info", "version=\"" + LabelValue(s.version) + "\"", 1);
  w.Gauge("nodedns_uptime_seconds", "Seconds since start", Seconds(s.now - s.started_at));
  w.Gauge("nodedns_workers", "Worker event-loop threads", s.workers);
  for (const Metric& m : s.metrics.metrics()) {
    if (m.kind == MetricKind::kCounter) {
      w.Counter(m.PromName(), m.help, m.value);
    } else {
      w.Gauge(m.PromName(), m.help, m.value);
    }
  }
  for (const HistogramMetric& h : s.metrics.histograms()) w.Histogram("nodedns_" + h.prom_name, h.help, h.values);

  auto per_server = [&](const std::string& name, const char* type, const std::string& help, auto value) {
    w.Family(name, type, help);
    for (const upstream::UpstreamSummary& u : s.upstreams) {
      w.Sample(name, "zone=\"" + LabelValue(u.zone) + "\",server=\"" + LabelValue(u.server) + "\"", value(u));
    }
  };
  per_server("nodedns_upstream_breaker_open", "gauge", "1 if the server's circuit breaker is open (on any worker)",
             [](const upstream::UpstreamSummary& u) { return u.open ? 1.0 : 0.0; });
  per_server("nodedns_upstream_state_seconds", "gauge", "Seconds the server has been in its breaker state",
             [&](const upstream::UpstreamSummary& u) { return StateSeconds(s, u); });
  per_server("nodedns_upstream_server_queries_total", "counter", "Queries sent to the server (not probes)",
             [](const upstream::UpstreamSummary& u) { return static_cast<double>(u.queries); });
  per_server("nodedns_upstream_server_failures_total", "counter",
             "Queries to the server that failed (timeout, error, SERVFAIL/REFUSED/NOTIMP)",
             [](const upstream::UpstreamSummary& u) { return static_cast<double>(u.failures); });
  per_server("nodedns_upstream_srtt_seconds", "gauge", "Smoothed round-trip time of the server's good answers",
             [](const upstream::UpstreamSummary& u) { return Seconds(u.srtt); });

  // Per zone (from the first server row of each zone).
  auto per_zone = [&](const std::string& name, const std::string& help, auto value) {
    w.Family(name, "gauge", help);
    std::set<std::string> seen;
    for (const upstream::UpstreamSummary& u : s.upstreams) {
      if (seen.insert(u.zone).second) w.Sample(name, "zone=\"" + LabelValue(u.zone) + "\"", value(u));
    }
  };
  per_zone("nodedns_upstream_zone_limit", "The adaptive concurrency limit of the zone, summed over workers",
           [](const upstream::UpstreamSummary& u) { return static_cast<double>(u.zone_limit); });
  per_zone("nodedns_upstream_zone_inflight", "Queries in flight to the zone",
           [](const upstream::UpstreamSummary& u) { return static_cast<double>(u.zone_inflight); });
  per_zone("nodedns_upstream_zone_queued", "Queries waiting for room under the zone's concurrency limit",
           [](const upstream::UpstreamSummary& u) { return static_cast<double>(u.zone_queued); });
  per_zone("nodedns_upstream_zone_state", "The zone's state: 0 healthy, 1 degraded (stale at once), 2 down",
           [](const upstream::UpstreamSummary& u) {
             return u.zone_health == "down" ? 2.0 : u.zone_health == "degraded" ? 1.0 : 0.0;
           });

  auto per_mirror = [&](const std::string& name, const char* type, const std::string& help, auto value) {
    if (s.mirrors.empty()) return;
    w.Family(name, type, help);
    for (const mirror::MirrorStatus& m : s.mirrors) {
      w.Sample(name, "zone=\"" + LabelValue(m.zone) + "\"", value(m));
    }
  };
  per_mirror("nodedns_mirror_serial", "gauge", "SOA serial of the zone's last transfer (0 before the first)",
             [](const mirror::MirrorStatus& m) { return static_cast<double>(m.serial); });
  per_mirror("nodedns_mirror_records", "gauge", "Records in the zone's last transfer",
             [](const mirror::MirrorStatus& m) { return static_cast<double>(m.records); });
  per_mirror("nodedns_mirror_last_transfer_age_seconds", "gauge",
             "Seconds since the zone's last transfer began (-1 before the first)", [&](const mirror::MirrorStatus& m) {
               return m.last_transfer == absl::InfinitePast() ? -1.0 : Seconds(s.now - m.last_transfer);
             });
  per_mirror("nodedns_mirror_transfers_total", "counter", "Transfers of the zone completed and stored",
             [](const mirror::MirrorStatus& m) { return static_cast<double>(m.transfers); });
  per_mirror("nodedns_mirror_deferred_total", "counter",
             "Transfers of the zone put off because the zone was not healthy for the data plane",
             [](const mirror::MirrorStatus& m) { return static_cast<double>(m.deferred); });
  per_mirror("nodedns_mirror_failures_total", "counter",
             "SOA checks and transfers of the zone that failed (nothing cached was changed)",
             [](const mirror::MirrorStatus& m) { return static_cast<double>(m.failures); });

  w.Family("nodedns_endpoint_connections_total", "counter",
           "Connections to the control socket and the HTTP endpoint, by outcome (idle_cut: closed to make room)");
  for (const auto& e : {std::pair{"control", &s.control_connections}, std::pair{"http", &s.http_connections}}) {
    const char* endpoint = e.first;
    ForEachOutcome(*e.second, [&](const char* outcome, uint64_t v) {
      w.Sample("nodedns_endpoint_connections_total",
               std::string("endpoint=\"") + endpoint + "\",outcome=\"" + outcome + "\"", static_cast<double>(v));
    });
  }
  return w.Take();
}

}  // namespace nodedns::control
