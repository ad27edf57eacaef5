#include "lib/app/handover.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>

#include "lib/app/peer_check.h"
#include "lib/common/guarded.h"
#include "lib/common/uv_status.h"
#include "lib/control/client.h"
#include "lib/control/protocol.h"

namespace nodedns::app {

using nlohmann::json;

absl::StatusOr<pid_t> TakeOver(const std::string& control_path) {
  // A nodedns already answers on our control socket. It writes its snapshot
  // for us now; we bind beside it (SO_REUSEPORT), load that snapshot, and
  // take over in Run.
  control::HandoverRequest req{getpid(), control::protocol::kHandoverProtocol, NODEDNS_VERSION};
  auto answer = control::Call(control_path, control::HandoverRequestJson(req), absl::Seconds(30));
  if (answer.ok()) {
    int64_t pid = control::AnswerInt(*answer, control::protocol::kPid);
    if (!control::AnswerOk(*answer) || pid <= 0) {
      return absl::FailedPreconditionError("the nodedns serving on " + control_path +
                                           " refused the handover: " + control::AnswerError(*answer));
    }
    spdlog::info("taking over from nodedns pid {} (its snapshot: {} entries)", pid,
                 control::AnswerInt(*answer, "entries"));
    return static_cast<pid_t>(pid);
  }
  if (absl::IsPermissionDenied(answer.status()) || absl::IsDeadlineExceeded(answer.status()) ||
      absl::IsDataLoss(answer.status())) {
    return absl::Status(answer.status().code(), "control socket: " + std::string(answer.status().message()));
  }
  // NotFound / Unavailable: nobody there (or a stale file): a normal start.
  return 0;
}

Handover::Handover(Parts parts, pid_t predecessor) : parts_(std::move(parts)), predecessor_(predecessor) {}

absl::Status Handover::Init() {
  for (uv_timer_t* t : {&predecessor_timer_, &successor_timer_, &grace_timer_}) {
    if (int rc = uv_timer_init(parts_.loop, t); rc != 0) return UvStatus(rc, "uv_timer_init (handover)");
    t->data = this;
  }
  initialized_ = true;
  return absl::OkStatus();
}

void Handover::Close() {
  if (!initialized_) return;
  initialized_ = false;
  for (uv_timer_t* t : {&predecessor_timer_, &successor_timer_, &grace_timer_}) {
    uv_timer_stop(t);
    uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
  }
}

void Handover::Complete() {
  // We serve (beside the predecessor): show it, and ask for the control
  // socket. It checks that we are a nodedns of our user with our addresses
  // bound, and keeps its socket until ours replaces it on the same path: a
  // socket answers there at every moment.
  control::ReleaseRequest req{getpid(), control::protocol::kHandoverProtocol, NODEDNS_VERSION,
                              parts_.server->bound_addresses()};
  auto answer = control::Call(parts_.control->path(), control::ReleaseRequestJson(req), absl::Seconds(10));
  bool released = answer.ok() && control::AnswerOk(*answer);
  if (answer.ok() && !released) {
    // It keeps serving with its control socket: this process must not stay
    // beside it without one.
    spdlog::error("handover: nodedns pid {} refused to hand over: {}; stopping (it keeps serving)", predecessor_,
                  control::AnswerError(*answer));
    parts_.abort();
    return;
  }
  if (!answer.ok()) {
    spdlog::warn("handover: no answer from nodedns pid {} ({}); taking the control socket if it is gone",
                 predecessor_, std::string(answer.status().message()));
  }
  if (auto st = parts_.control->Listen(/*replace_live=*/released); !st.ok()) {
    spdlog::error("handover: {}; stopping, since a serving nodedns needs its control socket", std::string(st.message()));
    parts_.abort();
    return;
  }
  parts_.announce_ready();
  spdlog::info("serving; nodedns pid {} hands over and stops when told to", predecessor_);
  // Once the predecessor has exited, its steering program goes, so the
  // kernel spreads queries over all our workers again.
  uv_timer_start(&predecessor_timer_, [](uv_timer_t* t) {
    static_cast<Handover*>(t->data)->WatchPredecessor();
  }, 100, 100);
}

pid_t Handover::LivePredecessor() const {
  if (predecessor_ != 0 && kill(predecessor_, 0) != 0 && errno == ESRCH) return 0;
  return predecessor_;
}

void Handover::WatchPredecessor() {
  if (predecessor_ == 0 || LivePredecessor() != 0) return;
  Guarded("handover", [this] {
    if (auto st = parts_.server->DetachSteering(); !st.ok()) spdlog::warn("handover: {}", std::string(st.message()));
    spdlog::info("handover: nodedns pid {} has exited", predecessor_);
  });
  uv_timer_stop(&predecessor_timer_);
  predecessor_ = 0;
}

absl::StatusOr<json> Handover::OnHandover(const control::HandoverRequest& request,
                                          const control::PeerCredentials& peer) {
  if (auto st = VerifyStartingNodedns(peer, request.protocol); !st.ok()) {
    spdlog::warn("handover refused (pid {} by its own account, {} in ours): {}", request.pid, peer.pid,
                 std::string(st.message()));
    return st;
  }
  if (successor_serving_) return absl::FailedPreconditionError("already handed over to a successor");
  // A new nodedns is starting beside us: give it a current snapshot.
  json j = {{"pid", getpid()}, {"entries", 0}, {"version", NODEDNS_VERSION}};
  if (parts_.keeper->enabled()) {
    snapshot::TimedWrite w = parts_.keeper->WriteNow();
    if (w.result.ok()) j["entries"] = w.result->entries;
  }
  spdlog::info("handover requested by nodedns {} (pid {} by its own account, {} in ours)", request.version,
               request.pid, peer.pid);
  return j;
}

absl::StatusOr<json> Handover::OnRelease(const control::ReleaseRequest& request, const control::PeerCredentials& peer) {
  if (successor_serving_) return absl::FailedPreconditionError("already handed over to a successor");
  if (auto st = VerifySuccessor(peer, request, parts_.server->bound_addresses()); !st.ok()) {
    spdlog::warn("release refused (pid {} by its own account, {} in ours): {}", request.pid, peer.pid,
                 std::string(st.message()));
    return st;
  }
  // The successor serves beside us. Our control socket stays until its own
  // replaces it on the path (WatchSuccessor); we stop when told.
  successor_serving_ = true;
  uv_timer_start(&successor_timer_, [](uv_timer_t* t) {
    auto* self = static_cast<Handover*>(t->data);
    Guarded("handover", [self] { self->WatchSuccessor(); });
  }, 200, 200);
  spdlog::info("successor pid {} is serving; it takes over the control socket", request.pid);
  return json{{"pid", getpid()}};
}

// After a release, every 200 ms: once the successor's socket is on the
// control path, stop listening on ours; if the successor goes away before we
// stop (it crashed), take the control socket back and serve as before.
void Handover::WatchSuccessor() {
  ControlSocket& control = *parts_.control;
  if (!OthersServe(parts_.server->bound_addresses())) {
    successor_serving_ = false;
    uv_timer_stop(&successor_timer_);
    if (!control.OwnsPath() && !parts_.stopping()) {
      if (auto st = control.Listen(/*replace_live=*/false); !st.ok()) {
        spdlog::error("handover: the successor has gone, and the control socket cannot be taken back: {}",
                      std::string(st.message()));
        return;
      }
    }
    spdlog::warn("handover: the successor has gone; serving on as before, with the control socket");
    return;
  }
  if (control.active() && !control.OwnsPath()) {
    control.GiveUpPath();
    spdlog::info("handover: the successor owns the control socket now");
  }
}

void Handover::WaitForSuccessor(absl::Duration grace, std::function<void()> then) {
  // Keep serving a little for a successor to take over (the control socket
  // stays open for its requests).
  spdlog::info("waiting up to {} for a successor", absl::FormatDuration(grace));
  grace_deadline_ = parts_.clock->Now() + grace;
  after_grace_ = std::move(then);
  uv_timer_start(&grace_timer_, [](uv_timer_t* t) {
    auto* self = static_cast<Handover*>(t->data);
    if (!self->successor_serving_ && self->parts_.clock->Now() < self->grace_deadline_) return;
    uv_timer_stop(t);
    Guarded("shutdown", [self] { self->after_grace_(); });
  }, 20, 20);
}

}  // namespace nodedns::app
