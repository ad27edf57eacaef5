#ifndef NODEDNS_LIB_COMMON_METRICS_H_
#define NODEDNS_LIB_COMMON_METRICS_H_

// The exported set: every number nodedns reports, as a flat list of
// (group, name, help, kind, value) that the control code renders twice, as
// JSON (`dnsctl stats`) and as the Prometheus text format (/metrics),
// without knowing which component declared what. Components append their
// own counter lists (NODEDNS_COUNTER_MEMBERS, lib/common/counters.h) and
// gauges; the composition root appends the set of each component.
//
//   JSON:       group "" -> "counters": {name: value}; else {group: {name: value}}
//   Prometheus: nodedns_[group_]name[_total for counters], or `prom_name`
//
// Threading: a plain value, built and read by one thread.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/common/counters.h"

namespace nodedns {

enum class MetricKind { kCounter, kGauge };

struct Metric {
  std::string group;  // "" for the data plane's counters
  std::string name;
  std::string help;
  MetricKind kind = MetricKind::kCounter;
  double value = 0;
  std::string prom_name;  // without "nodedns_"; "" derives it from group and name

  // The Prometheus series name, with the "nodedns_" prefix.
  std::string PromName() const;
};

struct HistogramMetric {
  std::string json_name;  // top-level field of the JSON stats
  std::string prom_name;  // without "nodedns_"
  std::string help;
  HistogramValues values;
};

class MetricSet {
 public:
  // Adds `value` to the metric (group, name), appending it on first use, so
  // that summing per-worker sets keeps declaration order. A gauge given
  // twice is summed too (entries of several workers' caches, for example).
  void Add(std::string_view group, std::string_view name, std::string_view help, MetricKind kind, double value,
           std::string_view prom_name = {});
  void Counter(std::string_view group, std::string_view name, std::string_view help, double value,
               std::string_view prom_name = {}) {
    Add(group, name, help, MetricKind::kCounter, value, prom_name);
  }
  void Gauge(std::string_view group, std::string_view name, std::string_view help, double value,
             std::string_view prom_name = {}) {
    Add(group, name, help, MetricKind::kGauge, value, prom_name);
  }
  // Every counter of a component's list (NODEDNS_COUNTER_MEMBERS), named
  // `prefix` + its name, in `group`.
  template <typename Counters>
  void AddCounters(std::string_view group, std::string_view prefix, const Counters& c) {
    c.ForEachCounter([&](const char* name, const char* help, uint64_t v) {
      Counter(group, std::string(prefix) + name, help, static_cast<double>(v));
    });
  }
  // Merges a histogram's buckets into (json_name), appending it on first use.
  template <typename H>
  void AddHistogram(std::string_view json_name, std::string_view prom_name, std::string_view help, const H& h) {
    FindOrAddHistogram(json_name, prom_name, help).values.Add(h);
  }
  // The value of (group, name), 0 if there is none.
  double Get(std::string_view group, std::string_view name) const;
  uint64_t GetCount(std::string_view group, std::string_view name) const {
    return static_cast<uint64_t>(Get(group, name));
  }
  // The histogram with this JSON name, empty if there is none.
  const HistogramValues& Histogram(std::string_view json_name) const;

  const std::vector<Metric>& metrics() const { return metrics_; }
  const std::vector<HistogramMetric>& histograms() const { return histograms_; }

 private:
  HistogramMetric& FindOrAddHistogram(std::string_view json_name, std::string_view prom_name, std::string_view help);

  std::vector<Metric> metrics_;
  std::vector<HistogramMetric> histograms_;
};

}  // namespace nodedns

#endif  // NODEDNS_LIB_COMMON_METRICS_H_
