#ifndef NODEDNS_LIB_SERVER_SERVER_H_
#define NODEDNS_LIB_SERVER_SERVER_H_

// The whole data plane: the shared cache, the bound sockets and the workers.
// The daemon's main() is a thin shell around it.
//
// Threading: Create/Start/Stop from one control thread (main). Counters() and
// cache() may be read from any thread.

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/cache/cache.h"
#include "lib/common/clock.h"
#include "lib/common/counters.h"
#include "lib/config/config.h"
#include "lib/server/worker.h"

namespace nodedns::server {

class Server {
 public:
  // Binds every listen address (port 0 resolved) and builds the workers.
  static absl::StatusOr<std::unique_ptr<Server>> Create(const config::Config& config, const Clock* clock);
  ~Server();

  void Start();
  // Graceful: returns once every worker has answered what it had in flight
  // and closed its sockets.
  void Stop();

  // The listen addresses with their real ports.
  const std::vector<SocketAddress>& bound_addresses() const { return bound_; }
  CounterValues Counters() const;
  cache::Cache& cache() { return *cache_; }

 private:
  Server() = default;
  std::unique_ptr<cache::Cache> cache_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<SocketAddress> bound_;
  bool stopped_ = false;
};

}  // namespace nodedns::server

#endif  // NODEDNS_LIB_SERVER_SERVER_H_
