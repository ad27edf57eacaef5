#include "bench/fleet/results.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

namespace nodedns::fleet {
namespace {

double Pct(std::vector<float> v, double q) {
  if (v.empty()) return -1;
  size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(k), v.end());
  return v[k];
}

// The time by which 99 % of nodes got there (values < 0: never); -1 if more
// than 1 % never did.
double NodesP99(std::vector<double> v) {
  if (v.empty()) return -1;
  for (double& x : v) {
    if (x < 0) x = std::numeric_limits<double>::infinity();
  }
  std::sort(v.begin(), v.end());
  double r = v[static_cast<size_t>(std::ceil(0.99 * static_cast<double>(v.size()))) - 1];
  return std::isinf(r) ? -1 : r;
}

using Kv = std::map<std::string, std::string>;

Kv ReadKv(const std::string& path) {
  Kv kv;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    size_t tab = line.find('\t');
    if (tab != std::string::npos) kv[line.substr(0, tab)] = line.substr(tab + 1);
  }
  return kv;
}

std::string Fmt(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

}  // namespace

bool WriteResults(const std::string& dir, const RunInfo& info, const Timeline& timeline, const PodsResult& pods,
                  const std::vector<StandInSecond>& cluster) {
  std::ofstream kv(dir + "/" + info.system + ".tsv");
  std::ofstream series(dir + "/" + info.system + ".series.tsv");
  if (!kv || !series) {
    std::fprintf(stderr, "fleet: cannot write results in %s\n", dir.c_str());
    return false;
  }
  kv << "system\t" << info.system << "\nnodes\t" << info.nodes << "\npods_per_node\t" << info.pods_per_node
     << "\nlookups_per_pod_s\t" << info.lookups_per_pod_s << "\ncapacity_qps\t" << info.capacity_qps
     << "\npod_query_rate\t" << info.pod_query_rate << "\nttl\t" << info.ttl << "\ntimeline\t" << info.timeline_spec
     << "\nqueries_sent\t" << pods.queries_sent << "\nlookups_unfinished\t" << pods.lookups_unfinished
     << "\nsend_errors\t" << pods.send_errors << "\n";
  const auto& phases = timeline.phases();
  auto second_phase = [&](size_t s) { return timeline.PhaseAt(static_cast<double>(s) + 0.5); };
  for (size_t i = 0; i < phases.size(); ++i) {
    const Phase& ph = phases[i];
    const PhaseStats& st = pods.phases[i];
    std::string p = "." + ph.name;
    kv << "phase" << i << "\t" << ph.name << "\nseconds" << p << "\t" << ph.end_s - ph.start_s << "\nknown" << p
       << "\t" << st.known << "\nknown_ok" << p << "\t" << st.known_ok << "\nnew" << p << "\t" << st.fresh
       << "\nnew_ok" << p << "\t" << st.fresh_ok << "\nlatency_p50_ms" << p << "\t" << Pct(st.latency_ms, 0.5)
       << "\nlatency_p99_ms" << p << "\t" << Pct(st.latency_ms, 0.99) << "\nlatency_max_ms" << p << "\t"
       << Pct(st.latency_ms, 1.0) << "\n";
    uint64_t peak = 0, sum = 0, soa = 0, dropped = 0, n = 0;
    for (size_t s = 0; s < cluster.size() && s < static_cast<size_t>(timeline.total_s()); ++s) {
      if (second_phase(s) != static_cast<int>(i)) continue;
      peak = std::max<uint64_t>(peak, cluster[s].received);
      sum += cluster[s].received;
      soa += cluster[s].soa;
      dropped += cluster[s].dropped;
      ++n;
    }
    double cap = info.capacity_qps * ph.capacity_factor;
    kv << "cluster_capacity" << p << "\t" << cap << "\ncluster_peak" << p << "\t" << peak << "\ncluster_mean" << p
       << "\t" << (n ? static_cast<double>(sum) / static_cast<double>(n) : 0) << "\ncluster_soa_mean" << p << "\t"
       << (n ? static_cast<double>(soa) / static_cast<double>(n) : 0) << "\ncluster_received" << p << "\t" << sum
       << "\ncluster_dropped" << p << "\t" << dropped
       << "\npeak_over_capacity" << p << "\t" << (ph.mode == Mode::kHealthy ? static_cast<double>(peak) / cap : -1)
       << "\n";
  }
  std::vector<double> only(pods.first_fresh_s.size());
  for (size_t i = 0; i < only.size(); ++i) {
    only[i] = pods.first_fresh_s[i] < 0 ? -1 : std::max(pods.first_fresh_s[i], pods.last_stale_s[i]);
  }
  kv << "fresh_first_p99_s\t" << NodesP99(pods.first_fresh_s) << "\nfresh_only_p99_s\t" << NodesP99(only)
     << "\nfresh_nodes\t" << std::count_if(only.begin(), only.end(), [](double x) { return x >= 0; })
     << "\nrecovery_s\t" << timeline.recovery_s() << "\nrss_sum_max_kb\t" << pods.max_fleet_rss_kb
     << "\nrss_per_node_kb\t" << (info.nodes ? pods.max_fleet_rss_kb / static_cast<uint64_t>(info.nodes) : 0) << "\n";

  series << "# t\treceived\tanswered\tdropped\tsoa\tcapacity\tstarted\tok\tsuccess_pct\trss_mb\n";
  for (size_t s = 0; s < static_cast<size_t>(timeline.total_s()); ++s) {
    StandInSecond c = s < cluster.size() ? cluster[s] : StandInSecond{};
    PodsSecond p = s < pods.seconds.size() ? pods.seconds[s] : PodsSecond{};
    double cap = info.capacity_qps * phases[static_cast<size_t>(second_phase(s))].capacity_factor;
    series << s << "\t" << c.received << "\t" << c.answered << "\t" << c.dropped << "\t" << c.soa << "\t" << cap
           << "\t" << p.started << "\t" << p.ok << "\t"
           << (p.started ? 100.0 * p.ok / p.started : 0) << "\t" << static_cast<double>(p.fleet_rss_kb) / 1024 << "\n";
  }
  return static_cast<bool>(kv) && static_cast<bool>(series);
}

bool PrintReport(const std::string& dir, const std::vector<std::string>& systems) {
  std::vector<Kv> runs;
  for (const std::string& s : systems) runs.push_back(ReadKv(dir + "/" + s + ".tsv"));
  auto found = std::find_if(runs.begin(), runs.end(), [](const Kv& kv) { return !kv.empty(); });
  if (found == runs.end()) return false;
  const Kv* first = &*found;
  auto num = [](const Kv& kv, const std::string& k, double* v) {
    auto it = kv.find(k);
    if (it == kv.end()) return false;
    *v = std::strtod(it->second.c_str(), nullptr);
    return true;
  };
  auto get = [&](const Kv& kv, const std::string& k) {
    double v = 0;
    num(kv, k, &v);
    return v;
  };
  std::vector<std::string> phases;
  for (int i = 0; first->count("phase" + std::to_string(i)); ++i) phases.push_back(first->at("phase" + std::to_string(i)));

  std::printf("fleet: %s nodes x %s pods (%s lookups/s each: %.0f pod queries/s to a cluster DNS asked directly), "
              "cluster DNS capacity %.0f qps, TTL %s s, timeline %s\n",
              first->at("nodes").c_str(), first->at("pods_per_node").c_str(), first->at("lookups_per_pod_s").c_str(),
              get(*first, "pod_query_rate"), get(*first, "capacity_qps"), first->at("ttl").c_str(),
              first->at("timeline").c_str());
  std::printf("%-44s", "");
  for (const std::string& s : systems) std::printf(" %20s", s.c_str());
  std::printf("\n");
  auto row = [&](const std::string& label, auto cell) {
    std::printf("%-44s", label.c_str());
    for (size_t i = 0; i < runs.size(); ++i) {
      std::string c = runs[i].empty() ? "not run" : cell(runs[i], systems[i]);
      std::printf(" %20s", c.c_str());
    }
    std::printf("\n");
  };
  auto share = [&](const char* n, const char* ok) {
    return [&, n, ok](const std::string& ph) {
      return [&, n, ok, ph](const Kv& kv, const std::string&) {
        double total = get(kv, std::string(n) + "." + ph);
        return total == 0 ? std::string("- (none asked)") : Fmt("%.2f", 100.0 * get(kv, std::string(ok) + "." + ph) / total);
      };
    };
  };
  std::printf("answered correctly (%%), names the node asked before\n");
  for (const auto& ph : phases) row("  " + ph, share("known", "known_ok")(ph));
  std::printf("answered correctly (%%), names the node never asked\n");
  for (const auto& ph : phases) row("  " + ph, share("new", "new_ok")(ph));
  std::printf("pod lookup latency p50 / p99 / max (ms)\n");
  for (const auto& ph : phases) {
    row("  " + ph, [&](const Kv& kv, const std::string&) {
      auto ms = [](double v) { return v < 10 ? Fmt("%.1f", v) : Fmt("%.0f", v); };
      return ms(get(kv, "latency_p50_ms." + ph)) + "/" + ms(get(kv, "latency_p99_ms." + ph)) + "/" +
             ms(get(kv, "latency_max_ms." + ph));
    });
  }
  std::printf("queries reaching the cluster DNS per second: mean / peak\n");
  for (const auto& ph : phases) {
    row("  " + ph + Fmt(" (capacity %.0f)", get(*first, "cluster_capacity." + ph)), [&](const Kv& kv, const std::string&) {
      return Fmt("%.0f", get(kv, "cluster_mean." + ph)) + " / " + Fmt("%.0f", get(kv, "cluster_peak." + ph));
    });
  }
  // Per node: what the README's scaling on paper multiplies by the fleet size.
  std::printf("the same per node per second: mean / peak\n");
  for (const auto& ph : phases) {
    row("  " + ph, [&](const Kv& kv, const std::string&) {
      double n = get(kv, "nodes");
      return Fmt("%.2f", get(kv, "cluster_mean." + ph) / n) + " / " + Fmt("%.2f", get(kv, "cluster_peak." + ph) / n);
    });
  }
  for (const auto& ph : phases) {
    if (ph != "recovery" && ph != "full") continue;
    row("peak / capacity, " + ph, [&](const Kv& kv, const std::string&) {
      return Fmt("%.2f", get(kv, "peak_over_capacity." + ph));
    });
  }
  for (const auto& ph : phases) {
    if (ph != "recovery" && ph != "full") continue;
    // What the overloaded server could not even queue: the collapse itself.
    row("cluster DNS dropped (% received), " + ph, [&](const Kv& kv, const std::string&) {
      double received = get(kv, "cluster_received." + ph);
      return received == 0 ? std::string("-") : Fmt("%.2f", 100.0 * get(kv, "cluster_dropped." + ph) / received);
    });
  }
  row("SOA probes per node per s, outage", [&](const Kv& kv, const std::string&) {
    double soa = 0, secs = 0;
    for (const auto& ph : phases) {
      if (ph == "down" || ph == "servfail") {
        soa += get(kv, "cluster_soa_mean." + ph) * get(kv, "seconds." + ph);
        secs += get(kv, "seconds." + ph);
      }
    }
    return secs == 0 ? std::string("-") : Fmt("%.2f", soa / secs / get(kv, "nodes"));
  });
  auto fresh = [&](const char* key) {
    return [&, key](const Kv& kv, const std::string&) {
      double v = get(kv, key);
      double left = get(kv, "seconds.recovery") + get(kv, "seconds.full");
      return v < 0 ? Fmt("never (> %.0f s)", left) : Fmt("%.2f", v);
    };
  };
  row("s to 99% of nodes: a fresh answer", fresh("fresh_first_p99_s"));
  row("s to 99% of nodes: only fresh ones", fresh("fresh_only_p99_s"));
  // Retries count toward load: a cache that stops answering doubles what its pods send.
  row("pod queries sent (all attempts)", [&](const Kv& kv, const std::string&) {
    return Fmt("%.0f", get(kv, "queries_sent"));
  });
  row("fleet memory, sum of RSS (MiB)", [&](const Kv& kv, const std::string& s) {
    return s == "none" ? std::string("no node cache") : Fmt("%.0f", get(kv, "rss_sum_max_kb") / 1024);
  });
  row("memory per node (MiB)", [&](const Kv& kv, const std::string& s) {
    return s == "none" ? std::string("no node cache") : Fmt("%.1f", get(kv, "rss_per_node_kb") / 1024);
  });
  return true;
}

}  // namespace nodedns::fleet
