#ifndef NODEDNS_LIB_APP_HTTP_ENDPOINTS_H_
#define NODEDNS_LIB_APP_HTTP_ENDPOINTS_H_

// The daemon's HTTP listeners ([metrics] listen, [health] listen): /metrics
// and the probes (/healthz, /readyz) on one address, or the probes on an
// address of their own (NodeLocal DNSCache users put health on the
// node-local address and metrics on the node IP; kops#9245). Requests go to
// the ControlTarget (control::HandleHttpRequest).
//
// Threading: the control loop's thread. Lifetime: Close(), let the loop run
// the close callbacks, then destroy.

#include <uv.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "lib/common/socket_address.h"
#include "lib/control/control_target.h"
#include "lib/control/http_endpoint.h"
#include "lib/control/stream_server.h"

namespace nodedns::app {

class HttpEndpoints {
 public:
  HttpEndpoints(uv_loop_t* loop, control::ControlTarget* target) : loop_(loop), target_(target) {}

  // Binds and listens: `metrics` (with the probes unless `health` is set),
  // then `health`. Either may be nullopt (off). The error names which.
  absl::Status Start(const std::optional<SocketAddress>& metrics, const std::optional<SocketAddress>& health);
  void Close();

  // Where they listen (the kernel's port for port 0), "metrics" then
  // "health" when apart: for the ready file and the start-up log line.
  struct Bound {
    std::string what;
    SocketAddress address;
  };
  const std::vector<Bound>& bound() const { return bound_; }
  std::vector<SocketAddress> addresses() const;
  // The addresses Start() will bind, before it has: those that are set.
  static std::vector<SocketAddress> Configured(const std::optional<SocketAddress>& metrics,
                                               const std::optional<SocketAddress>& health);
  // Both listeners' connection counts, summed (stats "http").
  control::ConnectionStats stats() const;

 private:
  absl::Status Listen(const SocketAddress& address, const std::string& what, control::HttpPaths paths);

  uv_loop_t* const loop_;
  control::ControlTarget* const target_;
  std::vector<std::unique_ptr<control::StreamServer>> servers_;
  std::vector<Bound> bound_;
};

}  // namespace nodedns::app

#endif  // NODEDNS_LIB_APP_HTTP_ENDPOINTS_H_
