#ifndef NODEDNS_LIB_SERVER_WORKER_H_
#define NODEDNS_LIB_SERVER_WORKER_H_

// One event-loop thread: its own libuv loop, listeners (SO_REUSEPORT sockets
// of its own), c-ares channels, router and resolver. Workers share only the
// cache. Coalescing is per worker, so with several workers two identical
// misses that land on different workers make two upstream queries.
//
// Threading: Create() on any thread before Start(); afterwards everything
// runs on the worker's thread except RequestStop(), Join() and counters().

#include <uv.h>

#include <memory>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/cache/cache.h"
#include "lib/common/clock.h"
#include "lib/common/counters.h"
#include "lib/common/timer_queue.h"
#include "lib/config/config.h"
#include "lib/resolver/resolver.h"
#include "lib/server/tcp_listener.h"
#include "lib/server/udp_listener.h"
#include "lib/upstream/pool.h"
#include "lib/upstream/router.h"
#include "lib/upstream/upstream_set.h"

namespace nodedns::server {

class Worker {
 public:
  // Takes ownership of the sockets (one UDP and one listening TCP socket per
  // listen address). Closes them on failure.
  static absl::StatusOr<std::unique_ptr<Worker>> Create(int index, const config::Config& config, cache::Cache* cache,
                                                        const Clock* clock, std::vector<int> udp_fds,
                                                        std::vector<int> tcp_fds);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void Start();
  // Graceful stop: no new queries; queries in flight are answered (or fail
  // after the upstream timeout); then every handle is closed. Thread-safe.
  void RequestStop();
  void Join();
  const Counters& counters() const { return counters_; }

 private:
  Worker(int index, const config::Config& config, const Clock* clock);
  void Run();
  void ArmTick(absl::Time deadline);
  static void OnTick(uv_timer_t* timer);
  static void OnStop(uv_async_t* handle);
  static void OnDrainTick(uv_timer_t* timer);
  void FinalClose();

  const int index_;
  const config::Config config_;
  const Clock* const clock_;
  uv_loop_t loop_;
  uv_timer_t tick_;  // fires for timers_.NextDeadline()
  uv_async_t stop_async_;
  uv_timer_t drain_timer_;
  absl::Time drain_deadline_;
  bool final_closed_ = false;
  Counters counters_;
  TimerQueue timers_;
  // One c-ares channel per server, so each server has its own breaker.
  std::vector<std::unique_ptr<upstream::UpstreamSet>> transports_;
  std::vector<std::unique_ptr<upstream::UpstreamPool>> pools_;
  std::vector<std::unique_ptr<upstream::Zone>> zones_;
  upstream::Router router_;
  std::unique_ptr<resolver::Resolver> resolver_;
  std::vector<std::unique_ptr<UdpListener>> udp_;
  std::vector<std::unique_ptr<TcpListener>> tcp_;
  std::thread thread_;
  bool loop_initialized_ = false;
  bool async_initialized_ = false;
};

}  // namespace nodedns::server

#endif  // NODEDNS_LIB_SERVER_WORKER_H_
