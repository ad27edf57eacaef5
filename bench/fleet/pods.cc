#include "bench/fleet/pods.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "bench/fleet/wire.h"

namespace nodedns::fleet {
namespace {

constexpr int64_t kNsPerSecond = 1000000000;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Pod MakePod(const PodsOptions& o, const Zipf& namespaces, const Zipf& services, const Zipf& externals,
            std::mt19937_64& rng) {
  Pod pod;
  pod.ns = namespaces(rng);
  auto add = [&](const Zipf& zipf, bool external, int count) {
    for (int tries = 0; count > 0 && tries < 100 * count; ++tries) {
      Dep d{external, zipf(rng)};
      bool dup = std::any_of(pod.deps.begin(), pod.deps.end(),
                             [&](const Dep& x) { return x.external == d.external && x.id == d.id; });
      if (dup) continue;
      pod.deps.push_back(d);
      --count;
    }
  };
  add(services, false, o.service_deps);
  add(externals, true, o.external_deps);
  return pod;
}

// Reads the resident set of `pid` in KiB (0 if it is gone).
uint64_t RssKb(int pid) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/statm", pid);
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  int got = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return got == 2 ? resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) / 1024 : 0;
}

class Runner {
 public:
  Runner(const PodsOptions& o, const std::vector<std::vector<Pod>>& initial, int64_t t0)
      : o_(o), t0_(t0), end_(t0 + static_cast<int64_t>(o.timeline.total_s() * kNsPerSecond)),
        recovery_(o.timeline.recovery_s() < 0 ? -1 : t0 + static_cast<int64_t>(o.timeline.recovery_s() * kNsPerSecond)),
        rng_(o.seed * 7919 + 1), namespaces_(o.catalogue.namespaces, o.zipf_s),
        services_(o.catalogue.services, o.zipf_s), externals_(o.catalogue.externals, o.zipf_s) {
    size_t n = o.targets.size();
    nodes_.resize(n);
    res_.phases.resize(o.timeline.phases().size());
    res_.seconds.resize(static_cast<size_t>(o.timeline.total_s()) + 1);
    res_.first_fresh_s.assign(n, -1);
    res_.last_stale_s.assign(n, -1);
    for (size_t i = 0; i < n; ++i) {
      nodes_[i].pods.resize(initial[i].size());
      for (size_t p = 0; p < initial[i].size(); ++p) {
        nodes_[i].pods[p].pod = initial[i][p];
        Schedule(t0 + Exp(o.lookups_per_pod_s), kLookup, Flat(i, p), 0);
      }
      Schedule(t0 + Exp(1.0 / o.new_pod_interval_s), kNewPod, static_cast<uint32_t>(i), 0);
    }
    Schedule(t0 + kNsPerSecond, kTick, 1, 0);
  }

  ~Runner() {
    if (trace_ != nullptr) std::fclose(trace_);
  }

  bool Open(std::string* error) {
    if (!o_.trace_path.empty()) trace_ = std::fopen(o_.trace_path.c_str(), "w");
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    for (size_t i = 0; i < nodes_.size(); ++i) {
      int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0 || connect(fd, reinterpret_cast<const sockaddr*>(&o_.targets[i]), sizeof(sockaddr_in)) != 0) {
        *error = std::string("pod socket: ") + std::strerror(errno);
        return false;
      }
      nodes_[i].fd = fd;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = static_cast<uint32_t>(i);
      epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
    }
    return true;
  }

  PodsResult Run() {
    epoll_event evs[256];
    while (true) {
      int64_t now = NowNs();
      while (!events_.empty() && events_.top().at <= now) {
        Event e = events_.top();
        events_.pop();
        Handle(e, now);
      }
      if (now >= end_ && (active_ == 0 || now >= end_ + static_cast<int64_t>(o_.drain_max_s * kNsPerSecond))) break;
      int64_t wait = events_.empty() ? 10000000 : std::clamp<int64_t>(events_.top().at - now, 0, 10000000);
      int n = epoll_wait(ep_, evs, 256, static_cast<int>((wait + 999999) / 1000000));
      for (int i = 0; i < n; ++i) Read(evs[i].data.u32);
    }
    int64_t now = NowNs();
    for (size_t s = 0; s < lookups_.size(); ++s) {
      if (!lookups_[s].active) continue;
      ++res_.lookups_unfinished;
      Finish(s, false, now);
    }
    for (Node& n : nodes_) close(n.fd);
    close(ep_);
    return std::move(res_);
  }

 private:
  enum Kind : uint8_t { kLookup, kDepLookup, kTimeout, kNewPod, kTick };
  struct Event {
    int64_t at;
    uint64_t order;  // ties in insertion order, so every system gets the same schedule
    Kind kind;
    uint32_t a, b;
  };
  struct Later {
    bool operator()(const Event& x, const Event& y) const { return x.at != y.at ? x.at > y.at : x.order > y.order; }
  };
  struct PodSlot {
    Pod pod;
    uint32_t generation = 0;  // bumped when a new pod takes the slot
  };
  struct Node {
    int fd = -1;
    std::vector<PodSlot> pods;
    uint16_t next_id = 1;
    std::unordered_map<uint16_t, uint32_t> inflight;  // query ID -> lookup slot
    std::unordered_set<uint64_t> answered;            // lookups answered correctly so far
  };
  struct Lookup {
    bool active = false;
    uint32_t node = 0;
    uint32_t seq = 0;  // the current attempt's (a stale timeout finds another)
    int64_t start = 0;
    Dep dep;
    Candidates cands;
    uint8_t cand = 0, attempt = 0;
    uint16_t id = 0;
    bool known = false;
    uint64_t key = 0;  // pod namespace, kind and number: what "asked before" compares
    int phase = 0;
    std::string history;  // only when tracing
  };

  uint32_t Flat(size_t node, size_t pod) const { return static_cast<uint32_t>(node * o_.pods_per_node + pod); }
  int64_t Exp(double rate) {
    return static_cast<int64_t>(std::exponential_distribution<double>(rate)(rng_) * kNsPerSecond);
  }
  void Schedule(int64_t at, Kind k, uint32_t a, uint32_t b) { events_.push({at, order_++, k, a, b}); }

  void Handle(const Event& e, int64_t now) {
    switch (e.kind) {
      case kLookup: {
        size_t node = e.a / static_cast<uint32_t>(o_.pods_per_node), pod = e.a % static_cast<uint32_t>(o_.pods_per_node);
        PodSlot& slot = nodes_[node].pods[pod];
        if (slot.generation != e.b || e.at >= end_) return;
        const Dep& dep = slot.pod.deps[std::uniform_int_distribution<size_t>(0, slot.pod.deps.size() - 1)(rng_)];
        Start(node, slot.pod.ns, dep, now);
        // From the scheduled moment, not from now: the same schedule for every system.
        Schedule(e.at + Exp(o_.lookups_per_pod_s), kLookup, e.a, e.b);
        return;
      }
      case kDepLookup: {
        size_t node = e.a / static_cast<uint32_t>(o_.pods_per_node), pod = e.a % static_cast<uint32_t>(o_.pods_per_node);
        PodSlot& slot = nodes_[node].pods[pod];
        if (slot.generation != (e.b >> 8) || e.at >= end_) return;
        Start(node, slot.pod.ns, slot.pod.deps[e.b & 0xff], now);
        return;
      }
      case kTimeout: {
        Lookup& l = lookups_[e.a];
        if (!l.active || l.seq != e.b) return;
        Note(l, now, "timeout");
        if (++l.attempt < o_.attempts) {
          Send(e.a, now);
          return;
        }
        nodes_[l.node].inflight.erase(l.id);
        Finish(e.a, false, now);  // glibc: a timeout ends the search
        return;
      }
      case kNewPod: {
        if (e.at >= end_) return;
        // A new pod replaces a random one and resolves all its dependencies
        // as it starts, then settles into the usual rate.
        Node& n = nodes_[e.a];
        size_t p = std::uniform_int_distribution<size_t>(0, n.pods.size() - 1)(rng_);
        PodSlot& slot = n.pods[p];
        slot.pod = MakePod(o_, namespaces_, services_, externals_, rng_);
        ++slot.generation;
        for (size_t d = 0; d < slot.pod.deps.size() && d < 256; ++d) {
          Schedule(e.at + static_cast<int64_t>(std::uniform_real_distribution<double>(0, 0.2)(rng_) * kNsPerSecond),
                   kDepLookup, Flat(e.a, p), slot.generation << 8 | static_cast<uint32_t>(d));
        }
        Schedule(e.at + Exp(o_.lookups_per_pod_s), kLookup, Flat(e.a, p), slot.generation);
        Schedule(e.at + Exp(1.0 / o_.new_pod_interval_s), kNewPod, e.a, 0);
        return;
      }
      case kTick: {
        uint64_t rss = 0;
        for (int pid : o_.fleet_pids) rss += RssKb(pid);
        res_.max_fleet_rss_kb = std::max(res_.max_fleet_rss_kb, rss);
        if (e.a - 1 < res_.seconds.size()) res_.seconds[e.a - 1].fleet_rss_kb = rss;
        if (e.at < end_) Schedule(e.at + kNsPerSecond, kTick, e.a + 1, 0);
        return;
      }
    }
  }

  void Start(size_t node, int pod_ns, const Dep& dep, int64_t now) {
    size_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
    } else {
      slot = lookups_.size();
      lookups_.emplace_back();
    }
    Lookup& l = lookups_[slot];
    l.active = true;
    l.node = static_cast<uint32_t>(node);
    l.start = now;
    l.dep = dep;
    l.cands = CandidatesFor(o_.catalogue, pod_ns, dep);
    l.cand = 0;
    l.attempt = 0;
    l.phase = o_.timeline.PhaseAt(static_cast<double>(now - t0_) / kNsPerSecond);
    l.history.clear();
    uint64_t key = static_cast<uint64_t>(pod_ns) << 40 | static_cast<uint64_t>(dep.external) << 32 |
                   static_cast<uint32_t>(dep.id);
    auto it = nodes_[node].answered.find(key);
    l.known = it != nodes_[node].answered.end();
    l.key = key;
    ++active_;
    size_t sec = static_cast<size_t>((now - t0_) / kNsPerSecond);
    if (sec < res_.seconds.size()) ++res_.seconds[sec].started;
    NewQuery(slot, now);
  }

  // The next candidate name: a new query ID, first attempt.
  void NewQuery(size_t slot, int64_t now) {
    Lookup& l = lookups_[slot];
    Node& n = nodes_[l.node];
    for (int tries = 0; tries < 65536; ++tries) {
      uint16_t id = n.next_id++;
      if (n.inflight.try_emplace(id, static_cast<uint32_t>(slot)).second) {
        l.id = id;
        l.attempt = 0;
        Send(slot, now);
        return;
      }
    }
    Finish(slot, false, now);
  }

  // The current attempt (glibc resends the same query, ID included).
  void Send(size_t slot, int64_t now) {
    Lookup& l = lookups_[slot];
    uint8_t buf[kMaxPacket];
    size_t len = WriteQuery(l.id, l.cands.names[l.cand], kTypeA, buf, sizeof(buf));
    if (len == 0 || send(nodes_[l.node].fd, buf, len, MSG_DONTWAIT) < 0) ++res_.send_errors;
    ++res_.queries_sent;
    l.seq = ++seq_;
    Note(l, now, "send " + l.cands.names[l.cand] + " #" + std::to_string(l.attempt + 1));
    Schedule(now + static_cast<int64_t>(o_.attempt_timeout_s * kNsPerSecond), kTimeout, static_cast<uint32_t>(slot),
             l.seq);
  }

  void Read(uint32_t node) {
    Node& n = nodes_[node];
    uint8_t buf[kMaxPacket];
    for (int i = 0; i < 1024; ++i) {
      ssize_t len = recv(n.fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (len < 0 && errno == EAGAIN) return;
      if (len <= 0) continue;  // ECONNREFUSED from a dead cache: the lookup times out
      int64_t now = NowNs();
      ParsedAnswer a;
      if (!ParseAnswer(buf, static_cast<size_t>(len), &a)) continue;
      auto it = n.inflight.find(a.id);
      if (it == n.inflight.end()) continue;
      size_t slot = it->second;
      Lookup& l = lookups_[slot];
      if (a.qname != l.cands.names[l.cand]) continue;  // not the question we asked
      n.inflight.erase(it);
      OnAnswer(slot, a, now);
    }
  }

  void OnAnswer(size_t slot, const ParsedAnswer& a, int64_t now) {
    Lookup& l = lookups_[slot];
    Note(l, now, "rcode " + std::to_string(a.rcode) + (a.has_a ? " A " + std::to_string(a.a >> 16 & 0xff) : ""));
    if (a.rcode == kRcodeNoError && a.has_a) {
      bool right_name = l.cand == l.cands.expected;
      bool ok = right_name && (l.dep.external ? a.a == Catalogue::ExternalAddress(l.dep.id)
                                              : (a.a >> 24) == 10 && (a.a & 0xffff) == static_cast<uint32_t>(l.dep.id));
      if (ok && !l.dep.external && recovery_ >= 0 && now >= recovery_) {
        double s = static_cast<double>(now - recovery_) / kNsPerSecond;
        if (Catalogue::AddressGeneration(a.a) >= 2) {
          if (res_.first_fresh_s[l.node] < 0) res_.first_fresh_s[l.node] = s;
        } else {
          res_.last_stale_s[l.node] = s;
        }
      }
      Finish(slot, ok, now);
      return;
    }
    // glibc moves on to the next name after NXDOMAIN, NODATA and SERVFAIL;
    // anything else ends the search.
    if (a.rcode == kRcodeNoError || a.rcode == kRcodeNxDomain || a.rcode == kRcodeServFail) {
      if (++l.cand < l.cands.names.size()) {
        NewQuery(slot, now);
        return;
      }
    }
    Finish(slot, false, now);
  }

  void Note(Lookup& l, int64_t now, const std::string& what) {
    if (trace_ == nullptr) return;
    l.history.append(" | ").append(std::to_string((now - l.start) / 1000000)).append("ms ").append(what);
  }

  void Finish(size_t slot, bool ok, int64_t now) {
    Lookup& l = lookups_[slot];
    l.active = false;
    if (trace_ != nullptr && (!ok || static_cast<double>(now - l.start) > o_.trace_slow_ms * 1e6)) {
      std::fprintf(trace_, "t=%.3f node=%u %s %s%s phase=%s ok=%d ms=%.1f%s\n",
                   static_cast<double>(l.start - t0_) / kNsPerSecond, l.node, l.dep.external ? "ext" : "svc",
                   std::to_string(l.dep.id).c_str(), l.known ? " known" : " new",
                   o_.timeline.phases()[static_cast<size_t>(l.phase)].name.c_str(), ok ? 1 : 0,
                   static_cast<double>(now - l.start) / 1e6, l.history.c_str());
    }
    --active_;
    PhaseStats& p = res_.phases[static_cast<size_t>(l.phase)];
    (l.known ? p.known : p.fresh) += 1;
    if (ok) (l.known ? p.known_ok : p.fresh_ok) += 1;
    p.latency_ms.push_back(static_cast<float>(static_cast<double>(now - l.start) / 1e6));
    size_t sec = static_cast<size_t>((l.start - t0_) / kNsPerSecond);
    if (ok && sec < res_.seconds.size()) ++res_.seconds[sec].ok;
    if (ok) nodes_[l.node].answered.insert(l.key);
    free_.push_back(slot);
  }

  const PodsOptions& o_;
  const int64_t t0_, end_, recovery_;
  std::mt19937_64 rng_;
  Zipf namespaces_, services_, externals_;
  std::vector<Node> nodes_;
  std::vector<Lookup> lookups_;
  std::vector<size_t> free_;
  std::priority_queue<Event, std::vector<Event>, Later> events_;
  uint64_t order_ = 0;
  uint32_t seq_ = 0;
  size_t active_ = 0;
  int ep_ = -1;
  FILE* trace_ = nullptr;
  PodsResult res_;
};

}  // namespace

std::vector<std::vector<Pod>> InitialPods(const PodsOptions& o) {
  std::mt19937_64 rng(o.seed);
  Zipf namespaces(o.catalogue.namespaces, o.zipf_s), services(o.catalogue.services, o.zipf_s),
      externals(o.catalogue.externals, o.zipf_s);
  std::vector<std::vector<Pod>> nodes(o.targets.size());
  for (auto& node : nodes) {
    for (int p = 0; p < o.pods_per_node; ++p) node.push_back(MakePod(o, namespaces, services, externals, rng));
  }
  return nodes;
}

double SteadyQueryRate(const PodsOptions& o, const std::vector<std::vector<Pod>>& pods) {
  double rate = 0;
  for (const auto& node : pods) {
    for (const Pod& pod : node) {
      double queries = 0;
      for (const Dep& d : pod.deps) queries += CandidatesFor(o.catalogue, pod.ns, d).expected + 1;
      if (!pod.deps.empty()) rate += o.lookups_per_pod_s * queries / static_cast<double>(pod.deps.size());
    }
  }
  return rate;
}

PodsResult RunPods(const PodsOptions& options, const std::vector<std::vector<Pod>>& initial, int64_t t0_ns) {
  Runner r(options, initial, t0_ns);
  std::string error;
  if (!r.Open(&error)) {
    std::fprintf(stderr, "fleet: %s\n", error.c_str());
    std::exit(1);
  }
  return r.Run();
}

}  // namespace nodedns::fleet
