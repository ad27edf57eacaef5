// The fleet benchmark's driver (bench/fleet/fleet.sh runs it).
//
//   nodedns_fleet_driver run --system NAME --out DIR [options]
//     Starts the cluster DNS and external stand-ins, waits until every node's
//     cache answers (unless --direct: the pods ask the cluster DNS), replays
//     the timeline with the pods of every node, and writes DIR/NAME.tsv and
//     DIR/NAME.series.tsv.
//   nodedns_fleet_driver report --out DIR --systems a,b,c
//     Prints the table over the systems' files.
//
// Every loop is bounded: the timeline, a drain of at most --drain-seconds,
// and at most --ready-seconds of waiting for the nodes.

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "bench/fleet/model.h"
#include "bench/fleet/pods.h"
#include "bench/fleet/results.h"
#include "bench/fleet/standin.h"
#include "bench/fleet/wire.h"

namespace nodedns::fleet {
namespace {

using Flags = std::map<std::string, std::string>;

std::string Flag(const Flags& f, const std::string& k, const std::string& def) {
  auto it = f.find(k);
  return it == f.end() ? def : it->second;
}
double Num(const Flags& f, const std::string& k, double def) {
  auto it = f.find(k);
  return it == f.end() ? def : std::strtod(it->second.c_str(), nullptr);
}

bool Addr(const std::string& ip, int port, sockaddr_in* out) {
  *out = {};
  out->sin_family = AF_INET;
  out->sin_port = htons(static_cast<uint16_t>(port));
  return inet_pton(AF_INET, ip.c_str(), &out->sin_addr) == 1;
}

// Node i's address: <prefix>.<i / 250>.<i % 250 + 1> (fleet.sh uses the same).
std::string NodeIp(const std::string& prefix, int i) {
  return prefix + "." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
}

// True once `to` answers a query (any rcode), within `deadline`.
bool Answers(const sockaddr_in& to, std::chrono::steady_clock::time_point deadline) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  timeval tv{0, 100000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof(to));
  uint8_t q[kMaxPacket], a[kMaxPacket];
  // An external name that does not exist: warms nothing the pods ask.
  size_t n = WriteQuery(0x5eed, "ready.example.com", kTypeA, q, sizeof(q));
  bool ok = false;
  while (!ok && std::chrono::steady_clock::now() < deadline) {
    send(fd, q, n, 0);
    ssize_t got = recv(fd, a, sizeof(a), 0);
    ParsedAnswer pa;
    ok = got > 0 && ParseAnswer(a, static_cast<size_t>(got), &pa) && pa.id == 0x5eed;
    if (!ok && got < 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  close(fd);
  return ok;
}

int Run(const Flags& f) {
  std::string system = Flag(f, "--system", "");
  std::string out = Flag(f, "--out", "");
  int nodes = static_cast<int>(Num(f, "--nodes", 100));
  int port = static_cast<int>(Num(f, "--port", 10053));
  std::string spec = Flag(f, "--timeline", "steady:20,down:25,servfail:15,recovery:25,full:15");
  auto timeline = Timeline::Parse(spec, Num(f, "--recovery-factor", 1.0 / 3));
  if (system.empty() || out.empty() || nodes < 1 || nodes > 5000 || !timeline) {
    std::fprintf(stderr, "fleet: run needs --system, --out, 1..5000 --nodes and a valid --timeline\n");
    return 2;
  }
  Catalogue cat;
  cat.services = static_cast<int>(Num(f, "--services", 2000));
  cat.namespaces = static_cast<int>(Num(f, "--namespaces", 30));
  cat.externals = static_cast<int>(Num(f, "--externals", 500));

  StandInOptions so;
  if (!Addr(Flag(f, "--cluster", "127.53.0.1"), port, &so.cluster) ||
      !Addr(Flag(f, "--external", "127.53.0.2"), port, &so.external)) {
    std::fprintf(stderr, "fleet: bad --cluster or --external address\n");
    return 2;
  }
  PodsOptions po;
  po.pods_per_node = static_cast<int>(Num(f, "--pods-per-node", 10));
  po.lookups_per_pod_s = Num(f, "--lookups-per-pod", 2);
  po.service_deps = static_cast<int>(Num(f, "--service-deps", 4));
  po.external_deps = static_cast<int>(Num(f, "--external-deps", 1));
  po.new_pod_interval_s = Num(f, "--new-pod-interval", 20);
  po.drain_max_s = Num(f, "--drain-seconds", 45);
  po.seed = static_cast<uint64_t>(Num(f, "--seed", 1));
  po.trace_path = Flag(f, "--trace", "");
  po.trace_slow_ms = Num(f, "--trace-slow-ms", 1000);
  po.catalogue = cat;
  po.timeline = *timeline;
  bool direct = f.count("--direct") > 0;
  std::string prefix = Flag(f, "--node-prefix", "127.100");
  for (int i = 0; i < nodes; ++i) {
    sockaddr_in a;
    if (!Addr(direct ? Flag(f, "--cluster", "127.53.0.1") : NodeIp(prefix, i), port, &a)) return 2;
    po.targets.push_back(a);
  }
  std::vector<std::vector<Pod>> pods = InitialPods(po);
  double rate = SteadyQueryRate(po, pods);
  // Unless given: a cluster DNS sized at --headroom times what the pods
  // would ask it without node caches (the same for every system).
  double capacity = Num(f, "--capacity", 0);
  if (capacity <= 0) capacity = rate * Num(f, "--headroom", 2);

  so.capacity_qps = capacity;
  so.max_queue_delay_s = Num(f, "--queue-ms", 250) / 1000;
  so.ttl = static_cast<uint32_t>(Num(f, "--ttl", 15));
  so.external_ttl = static_cast<uint32_t>(Num(f, "--external-ttl", 60));
  so.catalogue = cat;
  so.timeline = *timeline;
  std::string error;
  auto standins = StandIns::Start(so, &error);
  if (!standins) {
    std::fprintf(stderr, "fleet: stand-ins: %s\n", error.c_str());
    return 1;
  }
  if (!direct) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(static_cast<int>(Num(f, "--ready-seconds", 60)));
    for (int i = 0; i < nodes; ++i) {
      if (!Answers(po.targets[static_cast<size_t>(i)], deadline)) {
        std::fprintf(stderr, "fleet: node %d (%s) does not answer\n", i, NodeIp(prefix, i).c_str());
        return 1;
      }
    }
  }
  if (auto it = f.find("--pids"); it != f.end()) {
    // fleet.sh writes the file once every node has been started.
    for (int i = 0; i < 600 && access(it->second.c_str(), R_OK) != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::ifstream in(it->second);
    for (int pid; in >> pid;) po.fleet_pids.push_back(pid);
  }
  std::fprintf(stderr, "fleet: %s: %d nodes, %.0f pod queries/s when asking the cluster DNS directly, capacity %.0f; "
               "timeline %s (%.0f s)\n", system.c_str(), nodes, rate, capacity, spec.c_str(), timeline->total_s());
  int64_t t0 = std::chrono::duration_cast<std::chrono::nanoseconds>(
                   (std::chrono::steady_clock::now() + std::chrono::milliseconds(200)).time_since_epoch())
                   .count();
  standins->BeginTimeline(t0);
  PodsResult result = RunPods(po, pods, t0);
  standins->Stop();

  RunInfo info{system, nodes, po.pods_per_node, po.lookups_per_pod_s, capacity, rate, so.ttl, spec};
  return WriteResults(out, info, *timeline, result, standins->seconds()) ? 0 : 1;
}

int Report(const Flags& f) {
  std::vector<std::string> systems;
  std::string list = Flag(f, "--systems", "nodedns,unbound,dnsmasq,none");
  for (size_t start = 0; start <= list.size();) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    if (comma > start) systems.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  return PrintReport(Flag(f, "--out", "."), systems) ? 0 : 1;
}

}  // namespace
}  // namespace nodedns::fleet

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s run|report --flag value ...\n", argv[0]);
    return 2;
  }
  nodedns::fleet::Flags flags;
  for (int i = 2; i < argc; ++i) {
    std::string k = argv[i];
    if (k == "--direct") {
      flags[k] = std::string(1, '1');
    } else if (i + 1 < argc) {
      flags[k] = argv[++i];
    } else {
      std::fprintf(stderr, "%s needs a value\n", k.c_str());
      return 2;
    }
  }
  std::string cmd = argv[1];
  if (cmd == "run") return nodedns::fleet::Run(flags);
  if (cmd == "report") return nodedns::fleet::Report(flags);
  std::fprintf(stderr, "unknown command %s\n", cmd.c_str());
  return 2;
}
