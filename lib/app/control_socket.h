#ifndef NODEDNS_LIB_APP_CONTROL_SOCKET_H_
#define NODEDNS_LIB_APP_CONTROL_SOCKET_H_

// The daemon's control socket over its life: listening on the path (a live
// socket of another nodedns is refused, unless a predecessor hands it over),
// giving the path up to a successor, taking it back if the successor
// vanishes, and removing it at exit only if it is still ours. Requests go to
// the ControlTarget (control::HandleControlRequest).
//
// Threading: the control loop's thread. Lifetime: Close(), let the loop run
// the close callbacks, then destroy.

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "lib/config/config.h"
#include "lib/control/control_target.h"
#include "lib/control/stream_server.h"
#include "lib/control/unix_socket.h"

namespace nodedns::app {

// The socket's options from [control].
control::UnixSocketOptions ControlSocketOptionsFor(const config::Config& c);

class ControlSocket {
 public:
  // `options.path` empty: no control socket (every call does nothing).
  ControlSocket(uv_loop_t* loop, control::UnixSocketOptions options, control::ControlTarget* target);
  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;

  bool enabled() const { return !options_.path.empty(); }
  const std::string& path() const { return options_.path; }
  // Listens on the path. `replace_live`: take it over from a predecessor
  // that agreed (a socket answers on the path at every moment). A previous
  // server of ours is retired (its connections finish).
  absl::Status Listen(bool replace_live);
  // Listening, and the path is still the socket we made.
  bool OwnsPath() const;
  // Listening on a socket whose path a successor has replaced: stop
  // accepting (requests in progress finish); the path is not ours to remove.
  void GiveUpPath();
  bool active() const { return server_ != nullptr; }
  void Close();
  // At exit: removes the path if it is still ours.
  void RemoveIfOwned();
  control::ConnectionStats stats() const;

 private:
  uv_loop_t* loop_;
  control::UnixSocketOptions options_;
  control::ControlTarget* target_;
  control::UnixListener listener_;
  std::unique_ptr<control::StreamServer> server_;
  // Servers replaced by a new one (the socket taken back after a successor
  // vanished): kept until the loop ends, their handles may be closing.
  std::vector<std::unique_ptr<control::StreamServer>> retired_;
  bool owned_ = true;  // false once the path is a successor's
};

}  // namespace nodedns::app

#endif  // NODEDNS_LIB_APP_CONTROL_SOCKET_H_
