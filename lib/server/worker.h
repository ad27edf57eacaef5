#ifndef NODEDNS_LIB_SERVER_WORKER_H_
#define NODEDNS_LIB_SERVER_WORKER_H_

// One event-loop thread: its own libuv loop, listeners (SO_REUSEPORT sockets
// of its own), c-ares channels, router and resolver. Workers share only the
// cache. Coalescing is per worker, so with several workers two identical
// misses that land on different workers make two upstream queries.
//
// The upstream side (channels, pools, zones, router, resolver) is one
// "generation" built from the configuration. A reload builds a new one; new
// queries go to it at once, while the previous one stays until the queries it
// has in flight are answered, and is then closed.
//
// Threading: Create() on any thread before Start(); afterwards everything
// runs on the worker's thread except RequestStop(), Join(), Post(),
// AppendMetrics() and last_heartbeat_ns(), which any thread may call. The loop's
// state is guarded by a ThreadRole (lib/common/thread_role.h): held by the
// creating thread until Start(), by the worker's thread while it runs, and by
// the joining thread after Join(). Code posted to the worker calls
// AssertOnLoopThread() before the loop-thread methods.

#include <uv.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/common/mutex.h"
#include "lib/cache/cache.h"
#include "lib/common/clock.h"
#include "lib/common/metrics.h"
#include "lib/common/thread_role.h"
#include "lib/common/timer_queue.h"
#include "lib/server/options.h"
#include "lib/resolver/resolver.h"
#include "lib/server/counters.h"
#include "lib/server/query_log.h"
#include "lib/server/tcp_listener.h"
#include "lib/server/udp_listener.h"
#include "lib/upstream/pool.h"
#include "lib/upstream/router.h"
#include "lib/upstream/server_channel.h"

namespace nodedns::server {

// A zone's pool options: the configuration's with the zone's name (also used
// by the policy simulation, so that it runs what the daemon runs).
upstream::PoolOptions PoolOptionsFor(const ServerOptions& options, const ZoneOptions& zone);

// A server of a zone as one worker sees it.
struct WorkerUpstream {
  std::string zone;
  upstream::ServerStatus status;
  absl::Duration zone_p99;  // the zone's p99 latency on this worker (0: no samples)
  upstream::ZoneStatus zone_status;
};

class Worker {
 public:
  // Takes ownership of the sockets (one UDP and one listening TCP socket per
  // listen address). Closes them on failure.
  static absl::StatusOr<std::unique_ptr<Worker>> Create(int index, const ServerOptions& options, cache::Cache* cache,
                                                        const SteadyClock* clock, TcpBudget* tcp_budget,
                                                        resolver::LoopProbes* loop_probes,
                                                        std::vector<int> udp_fds, std::vector<int> tcp_fds);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void Start();
  // Graceful stop: no new queries; queries in flight are answered (or fail
  // after the upstream timeout); then every handle is closed. Thread-safe.
  void RequestStop();
  void Join();
  // Appends this worker's counters (listeners, resolver, upstream) and
  // histograms to `out`, summing with what is there. Thread-safe.
  void AppendMetrics(MetricSet* out) const;

  // Runs `fn` on the worker's thread. Thread-safe. Tasks posted after the
  // worker has closed are dropped (never run, then destroyed).
  void Post(std::function<void()> fn);
  // MonotonicNanos() of the loop's last heartbeat (every 250 ms while it runs).
  int64_t last_heartbeat_ns() const { return heartbeat_ns_.load(std::memory_order_relaxed); }

  // Worker thread only (through Post):
  // Switches new queries to a generation built from `options`; the current
  // one drains. On error nothing changes.
  absl::Status Reconfigure(const ServerOptions& options) ABSL_EXCLUSIVE_LOCKS_REQUIRED(loop_role_);
  std::vector<WorkerUpstream> Upstreams() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(loop_role_);
  // The max_stale of the zone `qname_wire` routes to (zero if none): on the
  // worker's thread, or before Start().
  absl::Duration MaxStale(std::string_view qname_wire) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(loop_role_);
  size_t pending() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(loop_role_);
  // Code running on the worker's thread (a posted task), or before Start()
  // on the creating thread, says so; aborts elsewhere (with assertions on).
  void AssertOnLoopThread() const ABSL_ASSERT_EXCLUSIVE_LOCK(loop_role_) { loop_role_.AssertHeld(); }

 private:
  struct Generation;
  Worker(int index, cache::Cache* cache, const SteadyClock* clock);
  absl::StatusOr<std::unique_ptr<Generation>> BuildGeneration(const ServerOptions& options)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(loop_role_);
  void Run();
  void ArmTick(absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(loop_role_);
  static void OnTick(uv_timer_t* timer);
  static void OnStop(uv_async_t* handle);
  static void OnTasks(uv_async_t* handle);
  static void OnDrainTick(uv_timer_t* timer);
  static void OnHeartbeat(uv_timer_t* timer);
  void ReapRetired(bool force) ABSL_EXCLUSIVE_LOCKS_REQUIRED(loop_role_);
  void FinalClose() ABSL_EXCLUSIVE_LOCKS_REQUIRED(loop_role_);

  const int index_;
  ThreadRole loop_role_{"worker loop"};
  const SteadyClock* const clock_;
  cache::Cache* const cache_;
  resolver::LoopProbes* loop_probes_ = nullptr;  // the server's; not owned
  uv_loop_t loop_;
  uv_timer_t tick_;  // fires for timers_.NextDeadline()
  uv_async_t stop_async_;
  uv_async_t task_async_;
  uv_timer_t drain_timer_;
  uv_timer_t heartbeat_;
  absl::Time drain_deadline_ ABSL_GUARDED_BY(loop_role_);
  // Sockets stay open (and drained) at least until then.
  absl::Time min_close_ ABSL_GUARDED_BY(loop_role_);
  bool final_closed_ ABSL_GUARDED_BY(loop_role_) = false;
  // Each component counts into its own list; the worker composes them.
  // Written on the loop's thread, read by any (relaxed atomics).
  Counters server_counters_;
  resolver::Counters resolver_counters_;
  upstream::Counters upstream_counters_;
  TimerQueue timers_ ABSL_GUARDED_BY(loop_role_);
  QueryLog query_log_ ABSL_GUARDED_BY(loop_role_);
  std::unique_ptr<Generation> current_ ABSL_GUARDED_BY(loop_role_);
  // Previous generations: draining (queries in flight), then closing.
  std::vector<std::unique_ptr<Generation>> retired_ ABSL_GUARDED_BY(loop_role_);
  std::vector<std::unique_ptr<UdpListener>> udp_ ABSL_GUARDED_BY(loop_role_);
  std::vector<std::unique_ptr<TcpListener>> tcp_ ABSL_GUARDED_BY(loop_role_);
  std::thread thread_;
  bool loop_initialized_ = false;
  bool handles_initialized_ = false;
  std::atomic<int64_t> heartbeat_ns_{0};
  Mutex tasks_mu_;
  std::vector<std::function<void()>> tasks_ ABSL_GUARDED_BY(tasks_mu_);
  bool tasks_closed_ ABSL_GUARDED_BY(tasks_mu_) = false;
};

}  // namespace nodedns::server

#endif  // NODEDNS_LIB_SERVER_WORKER_H_
