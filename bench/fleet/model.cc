#include "bench/fleet/model.h"

#include <algorithm>
#include <cmath>
#include <charconv>

namespace nodedns::fleet {
namespace {

// Parses "<prefix><number>" exactly; -1 otherwise.
int Numbered(std::string_view label, std::string_view prefix) {
  if (label.size() <= prefix.size() || label.substr(0, prefix.size()) != prefix) return -1;
  int v = -1;
  const char* b = label.data() + prefix.size();
  const char* e = label.data() + label.size();
  auto [end, ec] = std::from_chars(b, e, v);
  if (ec != std::errc() || end != e || v < 0) return -1;
  return v;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::string Catalogue::ServiceFqdn(int service) const {
  return std::string("svc").append(std::to_string(service)).append(".ns").append(std::to_string(NamespaceOf(service)))
      .append(".svc.cluster.local");
}

Catalogue::Lookup Catalogue::Resolve(std::string_view qname) const {
  if (qname.empty()) return {Kind::kRoot};
  if (qname == kClusterZone) return {Kind::kClusterApex};
  if (EndsWith(qname, ".cluster.local")) {
    // Exactly svc<k>.ns<m>.svc.cluster.local with m the service's namespace.
    constexpr std::string_view kSvcSuffix = ".svc.cluster.local";
    if (!EndsWith(qname, kSvcSuffix)) return {Kind::kClusterNxDomain};
    std::string_view head = qname.substr(0, qname.size() - kSvcSuffix.size());
    size_t dot = head.find('.');
    if (dot == std::string_view::npos) return {Kind::kClusterNxDomain};
    int k = Numbered(head.substr(0, dot), "svc");
    int m = Numbered(head.substr(dot + 1), "ns");
    if (k < 0 || k >= services || m != NamespaceOf(k)) return {Kind::kClusterNxDomain};
    return {Kind::kService, k};
  }
  constexpr std::string_view kExtSuffix = ".example.com";
  if (EndsWith(qname, kExtSuffix)) {
    int e = Numbered(qname.substr(0, qname.size() - kExtSuffix.size()), "e");
    if (e >= 0 && e < externals) return {Kind::kExternal, e};
  }
  return {Kind::kExternalNxDomain};
}

Candidates CandidatesFor(const Catalogue& cat, int pod_ns, const Dep& dep) {
  // Built with append: GCC 12 warns falsely (-Wrestrict) on "literal" +
  // std::string (https://gcc.gnu.org/bugzilla/show_bug.cgi?id=105651).
  std::string typed;
  Candidates c;
  if (dep.external) {
    typed.append("e").append(std::to_string(dep.id)).append(".example.com");
    c.expected = 3;  // after the three search domains
  } else if (cat.NamespaceOf(dep.id) == pod_ns) {
    typed.append("svc").append(std::to_string(dep.id));
    c.expected = 0;  // <svc>.<own ns>.svc.cluster.local
  } else {
    typed.append("svc").append(std::to_string(dep.id)).append(".ns").append(std::to_string(cat.NamespaceOf(dep.id)));
    c.expected = 1;  // <svc>.<ns>.svc.cluster.local
  }
  // All our typed names have fewer than ndots (5) dots: search list first.
  std::string own = std::string("ns").append(std::to_string(pod_ns)).append(".svc.cluster.local");
  for (std::string_view domain : {std::string_view(own), std::string_view("svc.cluster.local"), kClusterZone}) {
    c.names.push_back(typed + "." + std::string(domain));
  }
  c.names.push_back(typed);
  return c;
}

Zipf::Zipf(int n, double s) {
  cdf_.resize(static_cast<size_t>(std::max(1, n)));
  double sum = 0;
  for (size_t i = 0; i < cdf_.size(); ++i) {
    sum += 1.0 / std::pow(static_cast<double>(i + 1), s);
    cdf_[i] = sum;
  }
  for (double& v : cdf_) v /= sum;
}

int Zipf::operator()(std::mt19937_64& rng) const {
  double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  auto it = std::lower_bound(cdf_.begin(), cdf_.end(), u);
  return static_cast<int>(std::min<ptrdiff_t>(it - cdf_.begin(), static_cast<ptrdiff_t>(cdf_.size()) - 1));
}

std::optional<Timeline> Timeline::Parse(std::string_view spec, double recovery_factor) {
  Timeline t;
  bool after_outage = false;
  double at = 0;
  while (!spec.empty()) {
    size_t comma = spec.find(',');
    std::string_view item = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    size_t colon = item.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    Phase p;
    p.name = std::string(item.substr(0, colon));
    std::string seconds(item.substr(colon + 1));
    char* end = nullptr;
    double d = std::strtod(seconds.c_str(), &end);
    if (end == seconds.c_str() || *end != '\0' || !(d > 0) || d > 3600) return std::nullopt;
    if (p.name == "down") {
      p.mode = Mode::kDown;
    } else if (p.name == "servfail") {
      p.mode = Mode::kServFail;
    } else if (p.name == "recovery") {
      p.capacity_factor = recovery_factor;
    } else if (p.name != "steady" && p.name != "full") {
      return std::nullopt;
    }
    if (p.mode != Mode::kHealthy) {
      after_outage = true;
    } else if (after_outage) {
      p.generation = 2;
      if (t.recovery_s_ < 0) t.recovery_s_ = at;
    }
    p.start_s = at;
    at += d;
    p.end_s = at;
    t.phases_.push_back(std::move(p));
  }
  if (t.phases_.empty()) return std::nullopt;
  return t;
}

int Timeline::PhaseAt(double t) const {
  for (size_t i = 0; i < phases_.size(); ++i) {
    if (t < phases_[i].end_s) return static_cast<int>(i);
  }
  return static_cast<int>(phases_.size()) - 1;
}

}  // namespace nodedns::fleet
