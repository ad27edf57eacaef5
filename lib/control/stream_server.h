#ifndef NODEDNS_LIB_CONTROL_STREAM_SERVER_H_
#define NODEDNS_LIB_CONTROL_STREAM_SERVER_H_

// One request, one response, then close: what the control socket and the
// HTTP endpoint both need. Accepts on a listening socket, reads until a
// delimiter, hands the request to a handler that answers, now or later, and
// closes once the answer is written.
//
// Bounded against idle and hostile clients: the request must arrive whole
// within `request_timeout` and fit `max_request`; the answer must be taken
// within `answer_timeout`; at most `max_connections` are open. When they are
// all taken, a new connection cuts the oldest one still waiting for its
// request (with nothing to read yet) instead of being refused, so a prober or
// dnsctl that sends at once gets through however many idle connections
// someone holds; only when every connection has sent its request is the new
// one closed at once.
//
// Threading: one libuv loop (the daemon's control loop); not thread-safe.
// Lifetime: Close(), let the loop run its close callbacks, then destroy.

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "lib/control/peer.h"

namespace nodedns::control {

struct StreamServerOptions {
  std::string delimiter = "\n";  // the request ends with it
  size_t max_request = 64 * 1024;  // longer: `oversize` is answered and the connection closed
  absl::Duration request_timeout = absl::Seconds(1);  // connect to the whole request
  absl::Duration answer_timeout = absl::Seconds(30);  // request to the answer written
  size_t max_connections = 256;
  int backlog = 128;
  std::string oversize;        // answer for an oversized request ("" just closes)
  std::string internal_error;  // answer when the handler throws ("" just closes)
};

// Connections by outcome, since start.
struct ConnectionStats {
  uint64_t accepted = 0;
  uint64_t idle_cut = 0;   // closed to make room for a new one, request incomplete
  uint64_t refused = 0;    // closed at once: every slot was answering a request
  uint64_t timed_out = 0;  // request or answer deadline missed
  uint64_t oversize = 0;
  uint64_t internal_errors = 0;  // the handler threw

  // Sums another listener's counts into these (one endpoint, several sockets).
  ConnectionStats& operator+=(const ConnectionStats& o) {
    accepted += o.accepted;
    idle_cut += o.idle_cut;
    refused += o.refused;
    timed_out += o.timed_out;
    oversize += o.oversize;
    internal_errors += o.internal_errors;
    return *this;
  }
};

class StreamServer {
 public:
  using Respond = std::function<void(std::string response)>;
  // `request` includes the delimiter. `respond` may be called later (once);
  // after Close() or a client's disconnect it does nothing. A handler that
  // throws is logged and `internal_error` is answered.
  using Handler = std::function<void(std::string_view request, const PeerCredentials& peer, Respond respond)>;

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
  bool listening() const { return listening_; }

  const ConnectionStats& stats() const { return stats_; }
  size_t open_connections() const { return conns_.size(); }

 private:
  struct Connection;
  static void OnConnection(uv_stream_t* server, int status);
  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  void Dispatch(Connection* c, std::string request);
  void Answer(Connection* c, std::string response);
  // The oldest connection still waiting for its request with nothing to
  // read yet; nullptr if there is none.
  Connection* OldestIdle();
  void StartTimer(Connection* c, absl::Duration timeout);
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
  std::list<Connection*> reading_;  // still reading their request, oldest first
  ConnectionStats stats_;
};

}  // namespace nodedns::control

#endif  // NODEDNS_LIB_CONTROL_STREAM_SERVER_H_
