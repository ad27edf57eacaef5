#include "lib/common/metrics.h"

namespace nodedns {

std::string Metric::PromName() const {
  if (!prom_name.empty()) return "nodedns_" + prom_name;
  std::string n = "nodedns_";
  if (!group.empty()) n += group + "_";
  n += name;
  if (kind == MetricKind::kCounter) n += "_total";
  return n;
}

void MetricSet::Add(std::string_view group, std::string_view name, std::string_view help, MetricKind kind,
                    double value, std::string_view prom_name) {
  for (Metric& m : metrics_) {
    if (m.group == group && m.name == name) {
      m.value += value;
      return;
    }
  }
  metrics_.push_back(Metric{std::string(group), std::string(name), std::string(help), kind, value,
                            std::string(prom_name)});
}

double MetricSet::Get(std::string_view group, std::string_view name) const {
  for (const Metric& m : metrics_) {
    if (m.group == group && m.name == name) return m.value;
  }
  return 0;
}

const HistogramValues& MetricSet::Histogram(std::string_view json_name) const {
  static const HistogramValues kEmpty;
  for (const HistogramMetric& h : histograms_) {
    if (h.json_name == json_name) return h.values;
  }
  return kEmpty;
}

HistogramMetric& MetricSet::FindOrAddHistogram(std::string_view json_name, std::string_view prom_name,
                                               std::string_view help) {
  for (HistogramMetric& h : histograms_) {
    if (h.json_name == json_name) return h;
  }
  histograms_.push_back(HistogramMetric{std::string(json_name), std::string(prom_name), std::string(help), {}});
  return histograms_.back();
}

}  // namespace nodedns
