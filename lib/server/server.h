#ifndef NODEDNS_LIB_SERVER_SERVER_H_
#define NODEDNS_LIB_SERVER_SERVER_H_

// The whole data plane: the shared cache, the bound sockets and the workers.
// The daemon's main() is a thin shell around it (through app::App).
//
// Threading: Create/Start/Stop/Reload from one control thread. AppendMetrics(),
// cache(), Upstreams() and LoopsResponsive() may be called from any thread;
// Upstreams() and Reload() wait (bounded) for every worker's loop.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/common/mutex.h"
#include "lib/cache/cache.h"
#include "lib/common/clock.h"
#include "lib/common/metrics.h"
#include "lib/mirror/mirror.h"
#include "lib/resolver/pins.h"
#include "lib/server/options.h"
#include "lib/server/worker.h"
#include "lib/upstream/summary.h"

namespace nodedns::server {

using upstream::UpstreamSummary;

class Server {
 public:
  // Binds every listen address (port 0 resolved) and builds the workers.
  static absl::StatusOr<std::unique_ptr<Server>> Create(const ServerOptions& options, const SteadyClock* clock);
  ~Server();

  void Start();
  // Graceful: returns once every worker has answered what it had in flight
  // and closed its sockets.
  void Stop();

  // Applies new options: zones, servers and every [upstream], [serve_stale]
  // and TTL knob take effect for new queries at once; queries in flight
  // finish with the old settings; the cache is kept. The caller has set the
  // options that need a restart (sockets, workers, cache sizes, the
  // listeners' limits) back to their running values (the reload rules live
  // with the configuration: config::KeepRestartOnly). An error leaves the
  // running options in force.
  absl::Status Reload(const ServerOptions& options);

  // Zero-gap handover (SO_REUSEPORT): steers every new datagram and
  // connection of each listen address to the successor's first socket in
  // the reuseport group (a classic BPF program returning its index, which is
  // this server's own socket count: ours joined the group first). Call it
  // just before Stop(), once the successor serves.
  absl::Status SteerToSuccessor();
  // The successor's side, once the predecessor has exited: removes the
  // steering program, so the kernel spreads queries over our workers again.
  absl::Status DetachSteering();

  // The listen addresses with their real ports.
  const std::vector<SocketAddress>& bound_addresses() const { return bound_; }
  // Every worker's counters and histograms, summed into `out`.
  void AppendMetrics(MetricSet* out) const;
  cache::Cache& cache() { return *cache_; }
  // The zone mirror's state per mirrored zone (lib/mirror/mirror.h).
  std::vector<mirror::MirrorStatus> Mirrors() const;
  // The forwarding-loop probes every worker's resolver recognises
  // (lib/resolver/loop_probes.h); armed by the daemon while it probes.
  resolver::LoopProbes& loop_probes() { return loop_probes_; }
  // The options in force (after reloads).
  ServerOptions options() const;

  // Per upstream server, merged over workers. Error if a worker's loop does
  // not answer within `timeout`.
  absl::StatusOr<std::vector<UpstreamSummary>> Upstreams(absl::Duration timeout);
  // True if every worker loop has run within `max_silence`; otherwise lists
  // the silent ones in *why.
  bool LoopsResponsive(absl::Duration max_silence, std::string* why) const;
  // Event-loop threads: the UDP workers, then the TCP workers.
  int workers() const { return static_cast<int>(workers_.size()); }
  // The max_stale of the zone a name (wire form) routes to, as the workers
  // route it: for entries loaded from a snapshot. Only before Start().
  absl::Duration MaxStaleBeforeStart(std::string_view qname_wire) const {
    const Worker& w = *workers_.front();
    w.AssertOnLoopThread();  // not started: this (the creating) thread holds the role
    return w.MaxStale(qname_wire);
  }
  // Runs `fn` on worker `index`'s loop thread (dropped if it has stopped).
  void Post(size_t index, std::function<void()> fn) { workers_.at(index)->Post(std::move(fn)); }

 private:
  Server() = default;
  // The mirror of `o`'s zones with mirror = true (nullptr when none),
  // started, with what `previous` knew of them; its gate before a transfer
  // is ZoneHealthy: every worker finds the zone healthy.
  std::unique_ptr<mirror::Mirror> MakeMirror(const ServerOptions& o,
                                             const std::vector<mirror::MirrorStatus>& previous);
  bool ZoneHealthy(const std::string& zone);
  // Runs fn on every worker's loop and returns the results in worker order;
  // nullopt if not all finished within `timeout` (a late worker then writes
  // into state it shares, never into this frame).
  template <typename T>
  std::optional<std::vector<T>> CollectFromWorkers(std::function<T(Worker&)> fn, absl::Duration timeout);

  const SteadyClock* clock_ = nullptr;
  std::unique_ptr<cache::Cache> cache_;
  // What every worker's TCP connections hold together (outlives the workers).
  std::unique_ptr<TcpBudget> tcp_budget_;
  resolver::LoopProbes loop_probes_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<SocketAddress> bound_;
  // Each address's UDP and TCP reuseport groups: a dup of our first socket
  // in it (for group-wide socket options) and how many sockets we put in it.
  struct Group {
    int fd;
    int sockets;
  };
  std::vector<Group> groups_;
  bool stopped_ = false;
  mutable Mutex options_mu_;
  ServerOptions options_ ABSL_GUARDED_BY(options_mu_);
  std::vector<resolver::PinnedKey> pins_ ABSL_GUARDED_BY(options_mu_);  // of options_
  // The zones with mirror = true, transferred on the mirror's own thread
  // from Start() to Stop(); rebuilt by a reload that changes them.
  std::unique_ptr<mirror::Mirror> mirror_ ABSL_GUARDED_BY(options_mu_);
};

}  // namespace nodedns::server

#endif  // NODEDNS_LIB_SERVER_SERVER_H_
