// nodedns_hit_ratio: the trace generator and policy replay of
// bench/hit_ratio.sh (README, "Hit ratio").
//
//   nodedns_hit_ratio replay [--capacity=N] [--requests=N] [--catalogue=N]
//                            [--alpha=A] [--seed=S]
//     replays the four traces (traces.h) against the candidate policies
//     (policies.h) and nodedns's own cache (lib/cache, default options but
//     max_entries), and prints the hit ratio of each and the share of the
//     1,000 most popular names still cached at the end of the flood trace.
//     With --check, fails unless nodedns's cache hits every request of the
//     scan after its first pass, and keeps at least as many top names and
//     hits at least as often as LRU under the flood (the ctest smoke test).
//   nodedns_hit_ratio write --dir=DIR [same options]
//     writes the traces as dnsperf input (one "name A" per line, in order):
//     DIR/{zipf,flood,ndots,scan,top1000}.txt.
//
// Hit ratios count every request of the trace, the cold start included.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "bench/hit_ratio/policies.h"
#include "bench/hit_ratio/traces.h"
#include "lib/cache/cache.h"
#include "lib/dns/cache_image.h"
#include "lib/dns/message.h"
#include "lib/dns/name.h"
#include "lib/dns/query_view.h"

namespace nodedns::bench {
namespace {

std::string CacheKeyOf(uint64_t id) {
  std::string wire = *dns::NameFromText(NameOf(id));
  dns::CacheKey k;
  dns::MakeCacheKey(reinterpret_cast<const uint8_t*>(wire.data()), wire.size(), dns::kTypeA, dns::kClassIN, false,
                    false, &k);
  return std::string(k.view());
}

dns::CacheImage MakeImage(bool negative) {
  dns::Message m;
  m.flags = dns::kFlagQR | dns::kFlagRA;
  m.questions.push_back({*dns::NameFromText("x.example"), dns::kTypeA, dns::kClassIN});
  if (negative) {
    m.set_rcode(dns::kNxDomain);
    dns::Record soa{*dns::NameFromText("example"), dns::kTypeSOA, dns::kClassIN, 3600,
                    *dns::NameFromText("ns.example") + *dns::NameFromText("h.example")};
    uint8_t tail[20] = {};
    dns::Write32(tail + 16, 3600);
    soa.rdata.append(reinterpret_cast<char*>(tail), 20);
    m.authority.push_back(soa);
  } else {
    m.answers.push_back({*dns::NameFromText("x.example"), dns::kTypeA, dns::kClassIN, 86400, "\xc0\x00\x02\x01"});
  }
  return *dns::BuildCacheImage(m, dns::ImagePolicy{});
}

// nodedns's cache itself, as configured by default but for max_entries.
class NodednsCache : public Policy {
 public:
  explicit NodednsCache(size_t cap) : positive_(MakeImage(false)), negative_(MakeImage(true)) {
    cache::CacheOptions o;
    o.max_entries = cap;
    cache_ = *cache::Cache::Create(o);
  }
  std::string name() const override { return "nodedns cache (S3-FIFO, 16 shards)"; }
  bool Access(uint64_t k) override {
    std::string key = CacheKeyOf(k);
    if (cache_->Lookup(key, now_, buf_, sizeof(buf_), &info_) != cache::LookupStatus::kMiss) return true;
    cache_->Insert(key, IsNegative(k) ? negative_ : positive_, now_);
    return false;
  }
  bool Contains(uint64_t k) const override {
    std::string key = CacheKeyOf(k);
    bool found = false;
    cache_->ForEach([&](const cache::EntryView& e) { found = found || e.key == key; });
    return found;
  }
  absl::flat_hash_set<std::string> Keys() const {
    absl::flat_hash_set<std::string> keys;
    cache_->ForEach([&](const cache::EntryView& e) { keys.insert(std::string(e.key)); });
    return keys;
  }

 private:
  std::unique_ptr<cache::Cache> cache_;
  dns::CacheImage positive_, negative_;
  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
  uint8_t buf_[4096];
  cache::HitInfo info_;
};

std::vector<std::unique_ptr<Policy>> Candidates(size_t cap) {
  std::vector<std::unique_ptr<Policy>> out;
  out.push_back(std::make_unique<Lru>(cap));
  out.push_back(std::make_unique<ShardedLru>(cap, 16));
  out.push_back(std::make_unique<Sieve>(cap));
  out.push_back(std::make_unique<S3Fifo>(cap, 1));
  out.push_back(std::make_unique<S3Fifo>(cap, 2));
  out.push_back(std::make_unique<WTinyLfu>(cap));
  out.push_back(std::make_unique<Arc>(cap));
  out.push_back(std::make_unique<NodednsCache>(cap));
  return out;
}

size_t TopKept(Policy& p, const std::vector<uint64_t>& top) {
  size_t kept = 0;
  if (auto* n = dynamic_cast<NodednsCache*>(&p)) {
    absl::flat_hash_set<std::string> keys = n->Keys();
    for (uint64_t id : top) kept += keys.contains(CacheKeyOf(id));
    return kept;
  }
  for (uint64_t id : top) kept += p.Contains(id);
  return kept;
}

// --check: what the policy promises, on any trace size (the smoke test).
struct Result {
  std::string name;
  double ratio[4];
  size_t kept;
};
bool Check(const std::vector<Result>& results, const TraceParams& params) {
  const Result& lru = results.front();
  const Result& ours = results.back();
  double scan = double(params.passes - 1) / params.passes;
  bool ok = true;
  if (ours.ratio[3] < scan - 1e-9) {
    absl::FPrintF(stderr, "check failed: scan of exactly the capacity: hit ratio %.4f, want %.4f\n", ours.ratio[3],
                  scan);
    ok = false;
  }
  if (ours.kept < lru.kept || ours.ratio[1] < lru.ratio[1]) {
    absl::FPrintF(stderr, "check failed: flood: %d top names kept and hit ratio %.4f, LRU %d and %.4f\n", ours.kept,
                  ours.ratio[1], lru.kept, lru.ratio[1]);
    ok = false;
  }
  return ok;
}

int Replay(const TraceParams& params, bool check) {
  struct Trace {
    const char* name;
    std::vector<uint64_t> requests;
  };
  std::vector<Trace> traces = {{"zipf", ZipfTrace(params, 0)},
                               {"flood", ZipfTrace(params, params.flood)},
                               {"ndots", NdotsTrace(params)},
                               {"scan", ScanTrace(params)}};
  std::vector<uint64_t> top = TopNames(1000);
  absl::PrintF("trace replay: capacity %d entries, catalogue %d names, %d requests (scan: %d x %d), Zipf alpha %.2f, "
               "flood %.0f %%, seed %d\n",
               params.capacity, Catalogue(params), Requests(params), params.passes, params.capacity, params.alpha,
               params.flood * 100, params.seed);
  absl::PrintF("%-38s %7s %7s %7s %7s   %s   %s\n", "policy (hit ratio per trace)", "zipf", "flood", "ndots", "scan",
               "top-1000 kept after flood", "ns/request");
  size_t n_policies = Candidates(16).size();
  std::vector<Result> results;
  for (size_t i = 0; i < n_policies; ++i) {
    std::string name;
    double ratio[4];
    size_t kept = 0;
    double ns = 0, total = 0;
    for (size_t t = 0; t < traces.size(); ++t) {
      std::unique_ptr<Policy> p = std::move(Candidates(params.capacity)[i]);
      name = p->name();
      size_t hits = 0;
      auto start = std::chrono::steady_clock::now();
      for (uint64_t id : traces[t].requests) hits += p->Access(id);
      ns += std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
      total += traces[t].requests.size();
      ratio[t] = double(hits) / traces[t].requests.size();
      if (std::string(traces[t].name) == "flood") kept = TopKept(*p, top);
    }
    absl::PrintF("%-38s %7.4f %7.4f %7.4f %7.4f   %5d / %d (%5.1f %%)      %8.0f\n", name, ratio[0], ratio[1],
                 ratio[2], ratio[3], kept, top.size(), 100.0 * kept / top.size(), ns / total);
    results.push_back({name, {ratio[0], ratio[1], ratio[2], ratio[3]}, kept});
  }
  return check && !Check(results, params) ? 1 : 0;
}

int Write(const TraceParams& params, const std::string& dir) {
  auto write = [&](const char* file, const std::vector<uint64_t>& ids) {
    std::ofstream out(dir + "/" + file);
    for (uint64_t id : ids) out << NameOf(id) << " A\n";
    return static_cast<bool>(out);
  };
  bool ok = write("zipf.txt", ZipfTrace(params, 0)) && write("flood.txt", ZipfTrace(params, params.flood)) &&
            write("ndots.txt", NdotsTrace(params)) && write("scan.txt", ScanTrace(params)) &&
            write("top1000.txt", TopNames(1000));
  if (!ok) std::fprintf(stderr, "cannot write the traces to %s\n", dir.c_str());
  return ok ? 0 : 1;
}

int Main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s replay|write [--check] [--dir=DIR] [--capacity=N] [--requests=N] [--catalogue=N] "
                         "[--alpha=A] [--seed=S]\n", argv[0]);
    return 2;
  }
  TraceParams params;
  std::string dir;
  bool check = false;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    size_t eq = arg.find('=');
    std::string key = arg.substr(0, eq), value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    bool ok = true;
    if (key == "--check") {
      check = true;
    } else if (key == "--dir") {
      dir = value;
    } else if (key == "--capacity") {
      ok = absl::SimpleAtoi(value, &params.capacity) && params.capacity >= 16;
    } else if (key == "--requests") {
      ok = absl::SimpleAtoi(value, &params.requests);
    } else if (key == "--catalogue") {
      ok = absl::SimpleAtoi(value, &params.catalogue);
    } else if (key == "--alpha") {
      ok = absl::SimpleAtod(value, &params.alpha) && params.alpha > 0;
    } else if (key == "--seed") {
      ok = absl::SimpleAtoi(value, &params.seed);
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "bad argument: %s\n", argv[i]);
      return 2;
    }
  }
  if (std::string(argv[1]) == "replay") return Replay(params, check);
  if (std::string(argv[1]) == "write" && !dir.empty()) return Write(params, dir);
  std::fprintf(stderr, "unknown mode or missing --dir\n");
  return 2;
}

}  // namespace
}  // namespace nodedns::bench

int main(int argc, char** argv) { return nodedns::bench::Main(argc, argv); }
