#ifndef NODEDNS_LIB_CONTROL_STREAM_SERVER_H_
#define NODEDNS_LIB_CONTROL_STREAM_SERVER_H_

// One request, one response, then close: what the control socket and the
// HTTP endpoint both need. Accepts on a listening socket, reads until a
// delimiter (bounded size and time), hands the request to a handler that
// answers, now or later, and closes once the answer is written.
//
// Threading: one libuv loop (the daemon's control loop); not thread-safe.
// Lifetime: Close(), let the loop run its close callbacks, then destroy.

#include <uv.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/time/time.h"

namespace nodedns::control {

struct StreamServerOptions {
  std::string delimiter = "\n";     // the request ends with it
  size_t max_request = 64 * 1024;   // longer: `oversize` is answered and the connection closed
  absl::Duration timeout = absl::Seconds(10);  // for the whole exchange
  size_t max_connections = 64;
  std::string oversize;             // answer for an oversized request ("" just closes)
};

class StreamServer {
 public:
  using Respond = std::function<void(std::string response)>;
  // `request` includes the delimiter. `respond` may be called later (once);
  // after Close() or a client's disconnect it does nothing.
  using Handler = std::function<void(std::string_view request, Respond respond)>;

  StreamServer(uv_loop_t* loop, const StreamServerOptions& options, Handler handler);
  ~StreamServer();
  StreamServer(const StreamServer&) = delete;
  StreamServer& operator=(const StreamServer&) = delete;

  // Takes ownership of a bound, listening (or about to listen) socket.
  // `tcp` selects uv_tcp_t, else uv_pipe_t (Unix socket).
  absl::Status Start(int fd, bool tcp);
  // Stops accepting; connections already open are still answered.
  void StopListening();
  void Close();

 private:
  struct Connection;
  static void OnConnection(uv_stream_t* server, int status);
  void Answer(Connection* c, std::string response);
  void Finish(Connection* c);

  uv_loop_t* const loop_;
  const StreamServerOptions options_;
  Handler handler_;
  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_handle_t handle;
  } listener_;
  bool started_ = false;
  bool listening_ = false;
  bool closed_ = false;
  absl::flat_hash_set<Connection*> conns_;
};

}  // namespace nodedns::control

#endif  // NODEDNS_LIB_CONTROL_STREAM_SERVER_H_
