#ifndef NODEDNS_BENCH_HIT_RATIO_TRACES_H_
#define NODEDNS_BENCH_HIT_RATIO_TRACES_H_

// Synthetic DNS request traces for bench/hit_ratio.sh and the policy
// replays of nodedns_hit_ratio (seeded: the same arguments give the same
// trace). A request is a 64-bit name id: the kind of name in the high half,
// its number in the low half; NameOf gives the query name.
//
//   zipf   Zipf(alpha) over a catalogue of `catalogue` service names;
//   flood  the same stream, with `flood` (30 %) of the requests replaced by
//          names asked exactly once (a random-subdomain flood, a crawler);
//   ndots  Zipf over lookups a pod makes with ndots:5 and the search list
//          ns0.svc.cluster.local svc.cluster.local cluster.local: in-cluster
//          services (one query, found in the first search domain) and
//          external names with three dots (three NXDOMAIN expansions, then
//          the name itself: four queries);
//   scan   a cyclic scan of exactly `capacity` names, `passes` times.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace nodedns::bench {

enum NameKind : uint32_t {
  kService = 0,   // s<i>.bench.example
  kOneOff = 1,    // f<i>.flood.example
  kInCluster = 2, // svc<i>.ns0.svc.cluster.local
  kExternal = 3,  // api<i>.region.example.com
  kExpansion1 = 4, kExpansion2 = 5, kExpansion3 = 6,  // api<i>.region.example.com.<search domain>: NXDOMAIN
  kScan = 7,      // c<i>.scan.example
};

inline uint64_t Id(NameKind kind, uint32_t i) { return uint64_t{kind} << 32 | i; }
inline NameKind KindOf(uint64_t id) { return static_cast<NameKind>(id >> 32); }
inline bool IsNegative(uint64_t id) { return KindOf(id) >= kExpansion1 && KindOf(id) <= kExpansion3; }

inline std::string NameOf(uint64_t id) {
  std::string i = std::to_string(static_cast<uint32_t>(id));
  switch (KindOf(id)) {
    case kService: return "s" + i + ".bench.example";
    case kOneOff: return "f" + i + ".flood.example";
    case kInCluster: return "svc" + i + ".ns0.svc.cluster.local";
    case kExternal: return "api" + i + ".region.example.com";
    case kExpansion1: return "api" + i + ".region.example.com.ns0.svc.cluster.local";
    case kExpansion2: return "api" + i + ".region.example.com.svc.cluster.local";
    case kExpansion3: return "api" + i + ".region.example.com.cluster.local";
    case kScan: return "c" + i + ".scan.example";
  }
  return "";
}

struct TraceParams {
  size_t capacity = 10'000;   // the cache's max_entries
  size_t catalogue = 0;       // 0: 10 x capacity
  size_t requests = 0;        // 0: 10 x capacity (scan: passes x capacity)
  double alpha = 0.9;
  double flood = 0.3;
  int passes = 5;
  uint32_t seed = 1;
};

class Zipf {
 public:
  Zipf(size_t n, double alpha) : cdf_(n) {
    double sum = 0;
    for (size_t k = 0; k < n; ++k) cdf_[k] = sum += 1.0 / std::pow(double(k + 1), alpha);
    for (double& c : cdf_) c /= sum;
  }
  // Rank 0 is the most popular.
  template <typename Rng>
  uint32_t operator()(Rng& rng) {
    double u = std::uniform_real_distribution<double>(0, 1)(rng);
    size_t k = std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin();
    return static_cast<uint32_t>(std::min(k, cdf_.size() - 1));  // the last sum may round below 1
  }

 private:
  std::vector<double> cdf_;
};

inline size_t Catalogue(const TraceParams& p) { return p.catalogue ? p.catalogue : 10 * p.capacity; }
inline size_t Requests(const TraceParams& p) { return p.requests ? p.requests : 10 * p.capacity; }

inline std::vector<uint64_t> ZipfTrace(const TraceParams& p, double flood) {
  std::mt19937_64 rng(p.seed);
  Zipf zipf(Catalogue(p), p.alpha);
  std::bernoulli_distribution one_off(flood);
  std::vector<uint64_t> out;
  uint32_t next_one_off = 0;
  for (size_t r = 0; r < Requests(p); ++r) {
    out.push_back(one_off(rng) ? Id(kOneOff, next_one_off++) : Id(kService, zipf(rng)));
  }
  return out;
}

inline std::vector<uint64_t> NdotsTrace(const TraceParams& p) {
  std::mt19937_64 rng(p.seed + 1);
  Zipf zipf(Catalogue(p), p.alpha);
  std::vector<uint64_t> out;
  while (out.size() < Requests(p)) {
    uint32_t lookup = zipf(rng);
    // Lookups alternate by rank between in-cluster and external names.
    if (lookup % 2 == 0) {
      out.push_back(Id(kInCluster, lookup / 2));
    } else {
      for (NameKind k : {kExpansion1, kExpansion2, kExpansion3, kExternal}) out.push_back(Id(k, lookup / 2));
    }
  }
  out.resize(Requests(p));
  return out;
}

inline std::vector<uint64_t> ScanTrace(const TraceParams& p) {
  std::vector<uint64_t> out;
  for (int pass = 0; pass < p.passes; ++pass) {
    for (size_t i = 0; i < p.capacity; ++i) out.push_back(Id(kScan, static_cast<uint32_t>(i)));
  }
  return out;
}

// The `n` most popular names of the zipf and flood traces.
inline std::vector<uint64_t> TopNames(size_t n) {
  std::vector<uint64_t> out;
  for (size_t i = 0; i < n; ++i) out.push_back(Id(kService, static_cast<uint32_t>(i)));
  return out;
}

}  // namespace nodedns::bench

#endif  // NODEDNS_BENCH_HIT_RATIO_TRACES_H_
