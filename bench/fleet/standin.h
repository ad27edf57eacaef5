#ifndef NODEDNS_BENCH_FLEET_STANDIN_H_
#define NODEDNS_BENCH_FLEET_STANDIN_H_

// The upstreams of the simulated cluster, on one thread of the driver:
//  - the cluster DNS ("CoreDNS"): authoritative for cluster.local (and, for
//    pods that ask it directly, answering external names too, as CoreDNS
//    forwards them). Finite capacity: it answers at most capacity x the
//    phase's factor queries a second, in arrival order; what it cannot answer
//    at once waits in a queue of at most max_queue_delay's worth, and what
//    arrives at a full queue is dropped: an overloaded server whose latency
//    grows before it fails. Its mode follows the timeline: healthy, down
//    (every query dropped), SERVFAIL for the cluster zone (restarted while
//    the API server is unreachable), recovering at reduced capacity.
//  - the external resolver: answers external names at once, always.
// Per second of the timeline it counts the queries reaching the cluster DNS,
// answered and dropped, and the SOA queries (probes) among them.
//
// Owned by the driver's main thread; its own thread does all socket work.
// Counters are read only after Stop().

#include <netinet/in.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/fleet/model.h"

namespace nodedns::fleet {

struct StandInOptions {
  sockaddr_in cluster{};
  sockaddr_in external{};
  double capacity_qps = 5000;
  double max_queue_delay_s = 0.25;
  uint32_t ttl = 15;           // cluster records, positive and negative (SOA TTL and MINIMUM)
  uint32_t external_ttl = 60;  // external records
  Catalogue catalogue;
  Timeline timeline;
};

struct StandInSecond {
  uint32_t received = 0;  // queries reaching the cluster DNS
  uint32_t answered = 0;
  uint32_t dropped = 0;   // blackholed, or arrived at a full queue
  uint32_t soa = 0;       // of received: SOA queries (the caches' probes)
  uint32_t external = 0;  // queries to the external resolver
};

class StandIns {
 public:
  // Binds both sockets and starts the thread. nullptr (and *error) if a
  // socket cannot be bound.
  static std::unique_ptr<StandIns> Start(const StandInOptions& options, std::string* error);
  ~StandIns();
  StandIns(const StandIns&) = delete;
  StandIns& operator=(const StandIns&) = delete;

  // The timeline begins at t0 (steady_clock nanoseconds). Before it the
  // cluster DNS is healthy at full capacity and nothing is counted.
  void BeginTimeline(int64_t t0_ns) { t0_ns_.store(t0_ns); }
  void Stop();

  const std::vector<StandInSecond>& seconds() const { return seconds_; }

 private:
  struct Queued {
    int64_t arrived_ns;
    sockaddr_in from;
    uint16_t len;
    uint8_t bytes[512];
  };
  StandIns(const StandInOptions& options, int cluster_fd, int external_fd);
  void Run();
  void Drain(int fd, bool cluster, int64_t now_ns, const Phase& phase, double t);
  void Serve(int64_t now_ns, const Phase& phase);
  // Answers one query; `cluster`: as the cluster DNS in `phase`.
  void Answer(int fd, const uint8_t* query, size_t len, const sockaddr_in& to, bool cluster, const Phase& phase);
  StandInSecond* Second(double t);

  const StandInOptions options_;
  const int cluster_fd_;
  const int external_fd_;
  std::atomic<int64_t> t0_ns_{INT64_MAX};
  std::atomic<bool> stop_{false};
  std::thread thread_;
  // Thread-owned.
  std::vector<Queued> queue_;  // a ring buffer
  size_t head_ = 0;
  size_t size_ = 0;
  double tokens_ = 0;
  int64_t tokens_at_ns_ = 0;
  int last_phase_ = -1;
  std::vector<StandInSecond> seconds_;
};

}  // namespace nodedns::fleet

#endif  // NODEDNS_BENCH_FLEET_STANDIN_H_
