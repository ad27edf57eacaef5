#ifndef NODEDNS_BENCH_FLEET_MODEL_H_
#define NODEDNS_BENCH_FLEET_MODEL_H_

// What the simulated cluster is made of, shared by the pods and the
// stand-ins: the catalogue of names (services in namespaces, external
// names), the addresses that tell a correct and a fresh answer, Zipf
// popularity, and the incident's timeline.

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace nodedns::fleet {

inline constexpr std::string_view kClusterZone = "cluster.local";

// Service k lives in namespace k % namespaces and is named
// svc<k>.ns<m>.svc.cluster.local; external e is e<e>.example.com.
struct Catalogue {
  int services = 2000;
  int namespaces = 30;
  int externals = 500;

  int NamespaceOf(int service) const { return service % namespaces; }
  std::string ServiceFqdn(int service) const;

  // The cluster DNS's data. Service k's address is 10.<generation>.<k>: the
  // generation (1 before the outage, 2 once the control plane is back) is
  // how a pod tells a fresh answer from a stale one, whatever TTL or EDE a
  // cache put on it. An external name's is 11.1.<e>.
  static uint32_t ServiceAddress(int service, int generation) {
    return 10u << 24 | static_cast<uint32_t>(generation) << 16 | static_cast<uint32_t>(service);
  }
  static uint32_t ExternalAddress(int external) { return 11u << 24 | 1u << 16 | static_cast<uint32_t>(external); }
  static int AddressGeneration(uint32_t a) { return static_cast<int>(a >> 16 & 0xff); }

  // What a server answers for `qname` (lowercased, no trailing dot).
  enum class Kind { kService, kExternal, kClusterNxDomain, kExternalNxDomain, kClusterApex, kRoot };
  struct Lookup {
    Kind kind;
    int id = 0;  // the service or external number
  };
  Lookup Resolve(std::string_view qname) const;
};

// A pod's dependency: a service or an external name.
struct Dep {
  bool external = false;
  int id = 0;
};

// The names a stub tries for `dep` from a pod in namespace `pod_ns`, as
// glibc does with Kubernetes's resolv.conf (ndots:5, search
// <ns>.svc.cluster.local svc.cluster.local cluster.local): a name with
// fewer than five dots goes through the search list first, then as it is.
// A service in the pod's own namespace is asked by its short name, another
// namespace's as <svc>.<ns>; an external name as it is. `expected` is the
// index of the candidate that must answer.
struct Candidates {
  std::vector<std::string> names;
  int expected = 0;
};
Candidates CandidatesFor(const Catalogue& cat, int pod_ns, const Dep& dep);

// Samples 0..n-1 with probability proportional to 1/(rank+1)^s.
class Zipf {
 public:
  Zipf(int n, double s);
  int operator()(std::mt19937_64& rng) const;

 private:
  std::vector<double> cdf_;
};

// The incident, phase by phase. Kinds: steady (healthy), down (blackhole),
// servfail (SERVFAIL for the cluster zone), recovery (healthy at
// recovery_factor of the capacity), full (healthy again).
enum class Mode { kHealthy, kDown, kServFail };
struct Phase {
  std::string name;
  Mode mode = Mode::kHealthy;
  double capacity_factor = 1.0;
  int generation = 1;
  double start_s = 0;
  double end_s = 0;
};

class Timeline {
 public:
  // "steady:20,down:25,servfail:15,recovery:25,full:15". nullopt if malformed.
  static std::optional<Timeline> Parse(std::string_view spec, double recovery_factor);

  const std::vector<Phase>& phases() const { return phases_; }
  double total_s() const { return phases_.empty() ? 0 : phases_.back().end_s; }
  // Index of the phase at t seconds after the start (the last one past the end).
  int PhaseAt(double t) const;
  // When the cluster DNS answers again after the outage (the first healthy
  // phase after a down or servfail one), or -1.
  double recovery_s() const { return recovery_s_; }
  // True for the phases the cluster DNS answers in (names asked then are
  // ones a cache could have learnt).
  bool Answering(int phase) const { return phases_[static_cast<size_t>(phase)].mode == Mode::kHealthy; }

 private:
  std::vector<Phase> phases_;
  double recovery_s_ = -1;
};

}  // namespace nodedns::fleet

#endif  // NODEDNS_BENCH_FLEET_MODEL_H_
