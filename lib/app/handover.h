#ifndef NODEDNS_LIB_APP_HANDOVER_H_
#define NODEDNS_LIB_APP_HANDOVER_H_

// The zero-gap upgrade, both sides (README, "Zero-gap upgrades"):
//  - as the successor: TakeOver asks the running nodedns for a snapshot
//    before anything is set up; once we serve beside it, Complete asks for
//    its control socket and takes the path over; when the predecessor has
//    exited, its steering program goes;
//  - as the predecessor: OnHandover writes a snapshot for a verified starting
//    nodedns; OnRelease, once the successor serves every one of our
//    addresses, lets it take the control socket (we stop listening once its
//    socket is on the path, and take the socket back if it vanishes);
//    WaitForSuccessor keeps a stopping daemon serving for the grace period.
// Requests are honoured only from a process peer_check.h accepts.
//
// Threading: the control loop's thread. Lifetime: Close() with the loop's
// other handles, then destroy after the loop has run the close callbacks.

#include <sys/types.h>
#include <uv.h>

#include <functional>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lib/app/control_socket.h"
#include "lib/common/clock.h"
#include "lib/control/commands.h"
#include "lib/control/peer.h"
#include "lib/server/server.h"
#include "lib/snapshot/keeper.h"

namespace nodedns::app {

// Before anything else is set up: if a nodedns answers on `control_path`,
// asks it for a handover (it writes its snapshot for us) and returns its pid;
// 0 when nobody serves there (a normal start). An error when one serves and
// refuses, or cannot be asked.
absl::StatusOr<pid_t> TakeOver(const std::string& control_path);

class Handover {
 public:
  struct Parts {
    uv_loop_t* loop;
    const SteadyClock* clock;  // the grace period
    ControlSocket* control;
    server::Server* server;
    snapshot::Keeper* keeper;
    // The ready file, rewritten once the control socket is ours.
    std::function<void()> announce_ready;
    // The handover cannot complete: stop at once with exit code 1.
    std::function<void()> abort;
    // True once the daemon is shutting down.
    std::function<bool()> stopping;
  };
  Handover(Parts parts, pid_t predecessor);
  Handover(const Handover&) = delete;
  Handover& operator=(const Handover&) = delete;

  absl::Status Init();
  // As the successor, serving beside the predecessor (Run).
  void Complete();
  // As the predecessor: the control requests.
  absl::StatusOr<nlohmann::json> OnHandover(const control::HandoverRequest& request,
                                            const control::PeerCredentials& peer);
  absl::StatusOr<nlohmann::json> OnRelease(const control::ReleaseRequest& request,
                                           const control::PeerCredentials& peer);
  // Calls `then` once a successor serves or `grace` has passed.
  void WaitForSuccessor(absl::Duration grace, std::function<void()> then);
  void Close();

  pid_t predecessor() const { return predecessor_; }
  // The predecessor, looked at now rather than at the last 100 ms poll (0
  // once it has exited): at shutdown, what is left to it must not depend on
  // whether the poll ran since it exited.
  pid_t LivePredecessor() const;
  bool successor_serving() const { return successor_serving_; }

 private:
  void WatchPredecessor();
  void WatchSuccessor();

  Parts parts_;
  pid_t predecessor_;
  bool successor_serving_ = false;
  uv_timer_t predecessor_timer_, successor_timer_, grace_timer_;
  bool initialized_ = false;
  absl::Time grace_deadline_;
  std::function<void()> after_grace_;
};

}  // namespace nodedns::app

#endif  // NODEDNS_LIB_APP_HANDOVER_H_
