#include "lib/app/app.h"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <malloc.h>

#include <cstdio>
#include <exception>
#include <fstream>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/synchronization/mutex.h"
#include "lib/app/logging.h"
#include "lib/app/peer_check.h"
#include "lib/common/sd_notify.h"
#include "lib/control/client.h"
#include "lib/control/commands.h"
#include "lib/control/control_target.h"
#include "lib/control/http_endpoint.h"
#include "lib/control/protocol.h"
#include "lib/control/stats.h"
#include "lib/control/stream_server.h"
#include "lib/control/unix_socket.h"
#include "lib/dns/name.h"
#include "lib/netif/node_interface.h"
#include "lib/server/server.h"
#include "lib/server/sockets.h"
#include "lib/snapshot/snapshot.h"
#include "lib/upstream/router.h"

namespace nodedns::app {

using nlohmann::json;

namespace {

// The control loop's own callbacks (signals, timers, snapshot completions)
// run inside libuv: an exception must be logged there, never unwind through
// libuv and end the process. The data plane does not throw; what runs here
// builds strings and JSON.
template <typename F>
void Guarded(const char* what, F&& f) noexcept {
  try {
    f();
  } catch (const std::exception& e) {
    spdlog::error("{}: unexpected error: {}", what, e.what());
  } catch (...) {
    spdlog::error("{}: unexpected error", what);
  }
}

// The zones' current max_stale, for entries loaded from a snapshot.
class StaleLimits {
 public:
  explicit StaleLimits(const config::Config& c) {
    for (const config::ZoneConfig& z : c.zones) {
      auto zone = std::make_unique<upstream::Zone>();
      zone->name = z.name;
      zone->max_stale = z.max_stale;
      if (auto wire = dns::NameFromText(z.name); wire.ok()) router_.AddZone(*wire, zone.get());
      zones_.push_back(std::move(zone));
    }
  }
  absl::Duration operator()(std::string_view qname) const {
    const upstream::Zone* z = router_.Route(qname);
    return z ? z->max_stale : absl::ZeroDuration();
  }

 private:
  std::vector<std::unique_ptr<upstream::Zone>> zones_;
  upstream::Router router_;
};

// The account --user names, checked before anything is bound.
struct RunAs {
  uid_t uid;
  gid_t gid;
};
absl::StatusOr<RunAs> LookUpUser(const std::string& user) {
  passwd* pw = getpwnam(user.c_str());
  if (pw == nullptr) return absl::NotFoundError("--user: no user '" + user + "'");
  if (geteuid() != 0 && geteuid() != pw->pw_uid) {
    return absl::PermissionDeniedError("--user " + user + " needs nodedns to be started as root");
  }
  return RunAs{pw->pw_uid, pw->pw_gid};
}

// Runs as that user from now on: its uid, its primary group only, and
// thereby no capabilities (they go with the uid change from root).
absl::Status DropPrivileges(const RunAs& as) {
  if (getuid() == as.uid && geteuid() == as.uid) return absl::OkStatus();
  if (setgroups(1, &as.gid) != 0) return ErrnoStatus(errno, "setgroups");
  if (setgid(as.gid) != 0) return ErrnoStatus(errno, "setgid");
  if (setuid(as.uid) != 0) return ErrnoStatus(errno, "setuid");
  if (setuid(0) == 0) return absl::InternalError("--user: still able to become root after dropping privileges");
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  return absl::OkStatus();
}

bool WriteReadyFile(const std::string& path, const std::vector<std::string>& lines) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& l : lines) out << l << "\n";
    if (!out.flush()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

// A snapshot write and how long it took (any thread: the cache is thread-safe).
struct TimedWrite {
  absl::StatusOr<snapshot::WriteResult> result = absl::UnknownError("not run");
  absl::Duration took;
};
// Elapsed time and deadlines of the control loop: never the wall clock.
absl::Time SteadyNow() { return SystemSteadyClock::Get()->Now(); }

TimedWrite WriteTimed(const cache::Cache& cache, const std::string& path) {
  snapshot::Moment t0 = snapshot::Moment::Now();
  TimedWrite w;
  try {  // runs on libuv's thread pool: nothing may escape
    w.result = snapshot::Write(cache, path, t0);
  } catch (const std::exception& e) {
    w.result = absl::ResourceExhaustedError(std::string("snapshot write: ") + e.what());
  }
  w.took = SteadyNow() - t0.time.steady;
  return w;
}

// Restarts a periodic timer for a new period, keeping its phase: the next run
// comes one new period after the last one, not one period after now. So a
// reload, however often, never postpones a periodic snapshot or summary.
void Retime(uv_timer_t* t, uint64_t* period_ms, absl::Duration every, uv_timer_cb cb) {
  uint64_t ms = every > absl::ZeroDuration() ? static_cast<uint64_t>(absl::ToInt64Milliseconds(every)) : 0;
  if (ms == *period_ms) return;  // unchanged: the schedule stays as it is
  uint64_t first = ms;
  if (*period_ms != 0 && uv_is_active(reinterpret_cast<uv_handle_t*>(t))) {
    uint64_t since_last = *period_ms - std::min(uv_timer_get_due_in(t), *period_ms);
    first = ms > since_last ? ms - since_last : 0;
  }
  uv_timer_stop(t);
  *period_ms = ms;
  if (ms != 0) uv_timer_start(t, cb, first, ms);
}

}  // namespace

class App::Impl : public control::ControlTarget {
 public:
  Impl(const config::CommandLine& cl, const config::Config& config) : cl_(cl), config_(config) {}
  ~Impl() override {
    if (!loop_initialized_) return;
    // After a failed Init, handles may be open: close them and let the loop
    // run their callbacks, so uv_loop_close succeeds and nothing leaks.
    if (control_) control_->Close();
    for (auto& c : retired_control_) c->Close();
    if (http_) http_->Close();
    for (auto& s : signals_) {
      auto* h = reinterpret_cast<uv_handle_t*>(&s);
      if (signals_started_ && !uv_is_closing(h)) uv_close(h, nullptr);
    }
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    // Only if it is still the socket we made (Run removes it on a clean exit).
    if (control_ && control_owned_) control::RemoveUnixSocket(config_.control_socket, control_listener_);
    // A failed start removes an interface it created, never one it adopted
    // (a predecessor may be using it).
    if (netif_ && !netif_->adopted()) (void)netif_->Teardown();
  }

  absl::Status Init();
  int Run();

  // control::ControlTarget, for the control socket and the HTTP endpoint.
  control::StatsSnapshot Stats() override;
  std::vector<control::ZoneSummary> Zones() override;
  cache::Cache& Cache() override { return server_->cache(); }
  // The clock Server::Create is given below.
  absl::Time CacheNow() override { return SteadyNow(); }
  control::HealthStatus Health() override;
  absl::StatusOr<json> Reload() override;
  void Snapshot(Done done) override;
  absl::StatusOr<json> Handover(const control::HandoverRequest& request, const control::PeerCredentials& peer) override;
  absl::StatusOr<json> Release(const control::ReleaseRequest& request, const control::PeerCredentials& peer) override;

 private:
  struct SnapshotWork {
    uv_work_t req;
    Impl* self;
    std::string path;
    TimedWrite write;
  };

  absl::Status TakeOver();
  absl::Status ListenControl(bool replace_live);
  void WriteReady();
  void CompleteHandover();
  void WatchSuccessor();
  void FinishShutdown();
  void StartSnapshot(Done done);
  void RecordSnapshot(const TimedWrite& write);
  // Writes the snapshot on this thread and records the outcome.
  TimedWrite WriteSnapshotNow();
  void LogSummary();
  // `immediate`: no grace period (a failed takeover).
  void BeginShutdown(bool immediate = false);
  void StartSignals();
  void ArmTimers();
  void TrimAfterReload();
  static void OnSignal(uv_signal_t* handle, int signum);

  config::CommandLine cl_;
  config::Config config_;  // the running daemon-level settings (log, control, metrics, snapshot)
  uv_loop_t loop_;
  bool loop_initialized_ = false;
  std::unique_ptr<server::Server> server_;
  control::UnixListener control_listener_;
  std::unique_ptr<control::StreamServer> control_;
  // Control servers replaced by a new one (the socket taken back after a
  // successor vanished): kept until the loop ends, their handles may be closing.
  std::vector<std::unique_ptr<control::StreamServer>> retired_control_;
  std::unique_ptr<control::StreamServer> http_;
  SocketAddress metrics_bound_;
  uv_signal_t signals_[3];
  bool signals_started_ = false;
  uv_timer_t snapshot_timer_, summary_timer_, watchdog_timer_, trim_timer_;
  uint64_t snapshot_period_ms_ = 0, summary_period_ms_ = 0;
  int trims_left_ = 0;
  absl::Duration watchdog_interval_;
  absl::Time started_at_ = SteadyNow();
  control::SnapshotStats snap_;
  bool snapshot_running_ = false;
  std::vector<Done> snapshot_waiters_;
  uint64_t reloads_ = 0, reload_failures_ = 0;
  absl::Time last_reload_ = absl::InfinitePast();
  CounterValues last_summary_;
  bool ready_ = false;
  bool stopping_ = false;
  int exit_code_ = 0;
  // Handover: the process we took over from, and whether a successor has
  // taken over from us.
  pid_t predecessor_pid_ = 0;
  bool successor_serving_ = false;
  bool control_owned_ = true;  // false once the path is a successor's
  std::unique_ptr<netif::NodeInterface> netif_;
  uv_timer_t predecessor_timer_, successor_timer_, grace_timer_;
  absl::Time grace_deadline_;
};

absl::Status App::Impl::TakeOver() {
  // Zero-gap upgrade: a nodedns already answers on our control socket. It
  // writes its snapshot for us now; we bind beside it (SO_REUSEPORT), load
  // that snapshot, and take over in Run.
  control::HandoverRequest req{getpid(), control::protocol::kHandoverProtocol, NODEDNS_VERSION};
  auto answer = control::Call(config_.control_socket, control::HandoverRequestJson(req), absl::Seconds(30));
  if (answer.ok()) {
    int64_t pid = control::AnswerInt(*answer, control::protocol::kPid);
    if (!control::AnswerOk(*answer) || pid <= 0) {
      return absl::FailedPreconditionError("the nodedns serving on " + config_.control_socket +
                                           " refused the handover: " + control::AnswerError(*answer));
    }
    predecessor_pid_ = static_cast<pid_t>(pid);
    spdlog::info("taking over from nodedns pid {} (its snapshot: {} entries)", predecessor_pid_,
                 control::AnswerInt(*answer, "entries"));
  } else if (absl::IsPermissionDenied(answer.status()) || absl::IsDeadlineExceeded(answer.status()) ||
             absl::IsDataLoss(answer.status())) {
    return absl::Status(answer.status().code(), "control socket: " + std::string(answer.status().message()));
  }
  // NotFound / Unavailable: nobody there (or a stale file): a normal start.
  return absl::OkStatus();
}

absl::Status App::Impl::Init() {
  // A wrong --user fails before anything is bound or announced.
  std::optional<RunAs> run_as;
  if (cl_.user) {
    auto as = LookUpUser(*cl_.user);
    if (!as.ok()) return as.status();
    run_as = *as;
  }
  if (int rc = uv_loop_init(&loop_); rc != 0) return server::UvStatus(rc, "uv_loop_init");
  loop_initialized_ = true;
  if (!config_.control_socket.empty() && cl_.takeover) {
    if (auto st = TakeOver(); !st.ok()) return st;
  }
  // Without a predecessor the control socket is ours from the start: a live
  // one (another nodedns) is refused here, before anything else is set up.
  // A successor takes it over once it serves (Run).
  if (!config_.control_socket.empty() && !predecessor_pid_) {
    if (auto st = ListenControl(/*replace_live=*/false); !st.ok()) return st;
  }
  // Nor may a nodedns with another control socket serve our addresses:
  // beside it we would silently get half its queries and scrapes.
  if (!predecessor_pid_) {
    if (auto st = RefuseTwins(config_.listen, config_.metrics_listen); !st.ok()) return st;
  }
  // The listen addresses must exist before they can be bound.
  if (config_.interface_setup) {
    netif::InterfaceOptions o;
    o.name = config_.interface_name;
    o.notrack = config_.interface_notrack;
    o.addresses = config_.interface_addresses;
    if (o.addresses.empty()) o.addresses = config_.listen;
    for (SocketAddress& a : o.addresses) {
      for (const SocketAddress& l : config_.listen) {
        if (l.HostString() == a.HostString()) a.set_port(l.port());  // the NOTRACK rules' port
      }
    }
    auto ni = netif::NodeInterface::Setup(o);
    if (!ni.ok()) return absl::Status(ni.status().code(), "--setup-interface: " + std::string(ni.status().message()));
    netif_ = std::move(*ni);
    std::string addrs;
    for (const SocketAddress& a : o.addresses) addrs += " " + a.HostString();
    spdlog::info("interface {} ({}) {} with{}{}", o.name, netif_->kind(), netif_->adopted() ? "adopted" : "created",
                 addrs, o.notrack ? "; NOTRACK rules in nftables table inet nodedns" : "");
  }
  auto server = server::Server::Create(config_, SystemSteadyClock::Get());
  if (!server.ok()) return server.status();
  server_ = std::move(*server);

  // The snapshot first, so the first query already finds the cache warm.
  snap_.path = config_.snapshot_path;
  if (!snap_.path.empty()) {
    snapshot::Moment t0 = snapshot::Moment::Now();
    StaleLimits limits(config_);
    auto loaded = snapshot::Load(snap_.path, &server_->cache(), t0, [&limits](std::string_view q) { return limits(q); });
    snap_.load_seconds = absl::ToDoubleSeconds(SteadyNow() - t0.time.steady);
    if (loaded.ok()) {
      snap_.loaded_entries = loaded->loaded;
      snap_.load_expired = loaded->expired;
      spdlog::info("snapshot {}: loaded {} of {} entries ({} past max_stale dropped) in {:.3f} s; written {}",
                   snap_.path, loaded->loaded, loaded->entries_in_file, loaded->expired, snap_.load_seconds,
                   absl::FormatTime(loaded->written_at));
    } else if (absl::IsNotFound(loaded.status())) {
      spdlog::info("snapshot {}: no file yet, starting with an empty cache", snap_.path);
    } else {
      snap_.load_error = std::string(loaded.status().message());
      // Keep the evidence: the next write would replace the file.
      std::string aside = snap_.path + ".bad";
      bool kept = std::rename(snap_.path.c_str(), aside.c_str()) == 0;
      spdlog::error("snapshot {}: {}; starting with an empty cache{}", snap_.path, snap_.load_error,
                    kept ? "; the file is kept as " + aside : "");
    }
  }

  if (config_.metrics_listen) {
    auto fd = server::BindTcpListener(*config_.metrics_listen, &metrics_bound_);
    if (!fd.ok()) {
      return absl::Status(fd.status().code(), "metrics endpoint: " + std::string(fd.status().message()) +
                                                  " (set --metrics-listen ADDR:PORT, or \"\" to turn it off)");
    }
    http_ = std::make_unique<control::StreamServer>(
        &loop_, control::HttpEndpointOptions(), [this](std::string_view req, const control::PeerCredentials&,
                                      control::StreamServer::Respond r) { r(control::HandleHttpRequest(req, *this)); });
    if (auto st = http_->Start(*fd, /*tcp=*/true); !st.ok()) return st;
  }
  // Bound: the same check again, for a twin that bound in the meantime.
  if (!predecessor_pid_) {
    std::optional<SocketAddress> metrics;
    if (http_) metrics = metrics_bound_;
    if (auto st = RefuseTwins(server_->bound_addresses(), metrics); !st.ok()) return st;
  }
  // Caught from here on (handled once the loop runs): a SIGTERM right after
  // the ready file must stop us gracefully, not by the default action.
  StartSignals();
  // Every socket is bound and listening (the kernel queues what arrives
  // before the workers run): scripts may start sending. Written before
  // --user takes effect, so its directory need not be the user's.
  if (cl_.ready_file && !predecessor_pid_) WriteReady();
  if (run_as) {
    if (auto st = DropPrivileges(*run_as); !st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status App::Impl::ListenControl(bool replace_live) {
  control::UnixSocketOptions o;
  o.path = config_.control_socket;
  o.mode = config_.control_socket_mode;
  o.owner = config_.control_socket_owner;
  o.group = config_.control_socket_group;
  o.replace_live = replace_live;
  auto l = control::ListenUnix(o);
  if (!l.ok()) {
    return absl::Status(l.status().code(), "control socket: " + std::string(l.status().message()) +
                                               " (set --control-socket PATH, or \"\" to turn it off)");
  }
  control_listener_ = *l;
  if (control_) retired_control_.push_back(std::move(control_));
  control_ = std::make_unique<control::StreamServer>(
      &loop_, control::ControlSocketOptions(),
      [this](std::string_view req, const control::PeerCredentials& peer, control::StreamServer::Respond r) {
        control::HandleControlRequest(req, peer, *this, r);
      });
  control_owned_ = true;
  return control_->Start(l->fd, /*tcp=*/false);
}

void App::Impl::WriteReady() {
  std::vector<std::string> lines;
  for (const auto& a : server_->bound_addresses()) lines.push_back(a.ToString());
  if (http_) lines.push_back("metrics " + metrics_bound_.ToString());
  if (control_) lines.push_back("control " + config_.control_socket);
  if (!WriteReadyFile(*cl_.ready_file, lines)) spdlog::error("cannot write ready file {}", *cl_.ready_file);
}

void App::Impl::StartSignals() {
  int signums[3] = {SIGTERM, SIGINT, SIGHUP};
  for (int i = 0; i < 3; ++i) {
    uv_signal_init(&loop_, &signals_[i]);
    signals_[i].data = this;
    uv_signal_start(&signals_[i], &Impl::OnSignal, signums[i]);
  }
  signals_started_ = true;
}

int App::Impl::Run() {
  server_->Start();
  started_at_ = SteadyNow();
  for (uv_timer_t* t : {&snapshot_timer_, &summary_timer_, &watchdog_timer_, &trim_timer_, &predecessor_timer_,
                        &successor_timer_}) {
    uv_timer_init(&loop_, t);
    t->data = this;
  }
  if (predecessor_pid_) CompleteHandover();
  if (!stopping_) ready_ = true;
  std::string listening, upstreams;
  for (const auto& a : server_->bound_addresses()) listening += " " + a.ToString();
  for (const auto& z : config_.zones) {
    upstreams += " " + z.name + "->";
    for (size_t i = 0; i < z.servers.size(); ++i) upstreams += (i ? "," : "") + z.servers[i].ToString();
  }
  spdlog::info("nodedns {} listening on{} (udp+tcp), forwarding{}{}{}", NODEDNS_VERSION, listening, upstreams,
               http_ ? "; metrics on http://" + metrics_bound_.ToString() : std::string(),
               control_ ? "; control socket " + config_.control_socket : std::string());
  // A failed takeover has already closed the timers: nothing to arm.
  if (!stopping_) ArmTimers();
  watchdog_interval_ = SdWatchdogInterval();
  if (watchdog_interval_ > absl::ZeroDuration() && !stopping_) {
    uint64_t every = std::max<uint64_t>(1, absl::ToInt64Milliseconds(watchdog_interval_) / 2);
    uv_timer_start(&watchdog_timer_, [](uv_timer_t* t) {
      auto* self = static_cast<Impl*>(t->data);
      Guarded("watchdog", [self] {
        std::string why;
        // A keep-alive only while every worker loop turns: a stuck worker
        // makes systemd restart us.
        if (self->server_->LoopsResponsive(std::max(self->watchdog_interval_ / 2, absl::Seconds(1)), &why)) {
          (void)SdNotify("WATCHDOG=1");
        } else {
          spdlog::error("watchdog keep-alive withheld: {}", why);
        }
      });
    }, every, every);
  }
  if (!stopping_) {
    if (auto st = SdNotify("READY=1\nSTATUS=serving\nMAINPID=" + std::to_string(getpid())); !st.ok()) {
      spdlog::warn("sd_notify: {}", std::string(st.message()));
    }
  }

  uv_run(&loop_, UV_RUN_DEFAULT);

  // Workers are stopped and the loop is idle: the last snapshot, in full,
  // unless a successor took over (it loaded ours and writes its own).
  if (successor_serving_) {
    spdlog::info("snapshot: left to the successor");
  } else if (!snap_.path.empty() && exit_code_ == 0) {
    WriteSnapshotNow();
  }
  if (control_ && control_owned_) control::RemoveUnixSocket(config_.control_socket, control_listener_);
  if (netif_) {
    if (successor_serving_ || predecessor_pid_) {
      spdlog::info("interface {}: left to the {}", config_.interface_name,
                   successor_serving_ ? "successor" : "predecessor");
    } else if (auto st = netif_->Teardown(); st.ok()) {
      spdlog::info("interface {} and its rules removed", config_.interface_name);
    } else {
      spdlog::error("interface {}: {}", config_.interface_name, std::string(st.message()));
    }
    netif_.reset();
  }
  CounterValues v = server_->Counters();
  std::string line;
  v.ForEach([&](const char* name, const char*, uint64_t value) {
    if (value == 0) return;
    if (!line.empty()) line += " ";
    line += std::string(name) + "=" + std::to_string(value);
  });
  spdlog::info("counters: {}", line.empty() ? "(all zero)" : line);
  server_.reset();
  spdlog::info("stopped");
  return exit_code_;
}

void App::Impl::CompleteHandover() {
  // We serve (beside the predecessor): show it, and ask for the control
  // socket. It checks that we are a nodedns of our user with our addresses
  // bound, and keeps its socket until ours replaces it on the same path: a
  // socket answers there at every moment.
  control::ReleaseRequest req{getpid(), control::protocol::kHandoverProtocol, NODEDNS_VERSION,
                              server_->bound_addresses()};
  auto answer = control::Call(config_.control_socket, control::ReleaseRequestJson(req), absl::Seconds(10));
  bool released = answer.ok() && control::AnswerOk(*answer);
  if (answer.ok() && !released) {
    // It keeps serving with its control socket: this process must not stay
    // beside it without one.
    spdlog::error("handover: nodedns pid {} refused to hand over: {}; stopping (it keeps serving)", predecessor_pid_,
                  control::AnswerError(*answer));
    exit_code_ = 1;
    BeginShutdown(/*immediate=*/true);
    return;
  }
  if (!answer.ok()) {
    spdlog::warn("handover: no answer from nodedns pid {} ({}); taking the control socket if it is gone",
                 predecessor_pid_, std::string(answer.status().message()));
  }
  if (auto st = ListenControl(/*replace_live=*/released); !st.ok()) {
    spdlog::error("handover: {}; stopping, since a serving nodedns needs its control socket", std::string(st.message()));
    exit_code_ = 1;
    BeginShutdown(/*immediate=*/true);
    return;
  }
  if (cl_.ready_file) WriteReady();
  spdlog::info("serving; nodedns pid {} hands over and stops when told to", predecessor_pid_);
  // Once the predecessor has exited, its steering program goes, so the
  // kernel spreads queries over all our workers again.
  uv_timer_start(&predecessor_timer_, [](uv_timer_t* t) {
    auto* self = static_cast<Impl*>(t->data);
    if (kill(self->predecessor_pid_, 0) == 0 || errno != ESRCH) return;
    Guarded("handover", [self] {
      if (auto st = self->server_->DetachSteering(); !st.ok()) {
        spdlog::warn("handover: {}", std::string(st.message()));
      }
      spdlog::info("handover: nodedns pid {} has exited", self->predecessor_pid_);
    });
    uv_timer_stop(t);
    self->predecessor_pid_ = 0;
  }, 100, 100);
}

// After a release, every 200 ms: once the successor's socket is on the
// control path, stop listening on ours; if the successor goes away before we
// stop (it crashed), take the control socket back and serve as before.
void App::Impl::WatchSuccessor() {
  if (!OthersServe(server_->bound_addresses())) {
    successor_serving_ = false;
    uv_timer_stop(&successor_timer_);
    bool ours = control_ && control_->listening() && control::IsOurUnixSocket(config_.control_socket,
                                                                              control_listener_);
    if (!ours && !stopping_) {
      if (auto st = ListenControl(/*replace_live=*/false); !st.ok()) {
        spdlog::error("handover: the successor has gone, and the control socket cannot be taken back: {}",
                      std::string(st.message()));
        return;
      }
    }
    spdlog::warn("handover: the successor has gone; serving on as before, with the control socket");
    return;
  }
  if (control_ && control_->listening() && !control::IsOurUnixSocket(config_.control_socket, control_listener_)) {
    control_->StopListening();
    control_owned_ = false;  // the path is the successor's from now on
    spdlog::info("handover: the successor owns the control socket now");
  }
}

void App::Impl::ArmTimers() {
  Retime(&snapshot_timer_, &snapshot_period_ms_, snap_.path.empty() ? absl::ZeroDuration() : config_.snapshot_interval,
         [](uv_timer_t* t) {
           auto* self = static_cast<Impl*>(t->data);
           Guarded("periodic snapshot", [self] { self->StartSnapshot(nullptr); });
         });
  Retime(&summary_timer_, &summary_period_ms_, config_.log_summary_interval, [](uv_timer_t* t) {
    auto* self = static_cast<Impl*>(t->data);
    Guarded("summary", [self] { self->LogSummary(); });
  });
}

// A reload's previous upstream generation is freed once its queries are
// done (at most ~30 s later); glibc keeps the freed pages of the workers'
// arenas unless asked. Trim a few times over that window.
void App::Impl::TrimAfterReload() {
  trims_left_ = 3;
  uv_timer_start(&trim_timer_, [](uv_timer_t* t) {
    auto* self = static_cast<Impl*>(t->data);
    malloc_trim(0);
    if (--self->trims_left_ <= 0) uv_timer_stop(t);
  }, 5000, 15000);
}

void App::Impl::OnSignal(uv_signal_t* handle, int signum) {
  auto* self = static_cast<Impl*>(handle->data);
  Guarded("signal", [self, signum] {
    if (signum == SIGHUP) {
      spdlog::info("SIGHUP received: reloading the configuration");
      (void)self->Reload();
      return;
    }
    spdlog::info("signal {} received: shutting down", signum);
    self->BeginShutdown();
  });
}

void App::Impl::BeginShutdown(bool immediate) {
  if (stopping_) return;
  stopping_ = true;
  ready_ = false;
  (void)SdNotify("STOPPING=1\nSTATUS=shutting down");
  if (immediate || successor_serving_ || config_.handover_grace <= absl::ZeroDuration()) {
    FinishShutdown();
    return;
  }
  // Keep serving a little for a successor to take over (the control socket
  // stays open for its requests).
  spdlog::info("waiting up to {} for a successor", absl::FormatDuration(config_.handover_grace));
  grace_deadline_ = SteadyNow() + config_.handover_grace;
  uv_timer_init(&loop_, &grace_timer_);
  grace_timer_.data = this;
  uv_timer_start(&grace_timer_, [](uv_timer_t* t) {
    auto* self = static_cast<Impl*>(t->data);
    if (!self->successor_serving_ && SteadyNow() < self->grace_deadline_) return;
    uv_timer_stop(t);
    uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
    Guarded("shutdown", [self] { self->FinishShutdown(); });
  }, 20, 20);
}

void App::Impl::FinishShutdown() {
  if (successor_serving_) {
    // New datagrams and connections go to the successor from here on; what
    // is already queued on our sockets is still read and answered.
    if (auto st = server_->SteerToSuccessor(); st.ok()) {
      spdlog::info("handover: new queries go to the successor; answering what is queued and in flight");
    } else {
      spdlog::warn("handover: {}", std::string(st.message()));
    }
  }
  if (control_) control_->Close();
  for (auto& c : retired_control_) c->Close();
  if (http_) http_->Close();
  // Answers what is in flight, then closes the workers' sockets.
  server_->Stop();
  for (auto& s : signals_) uv_close(reinterpret_cast<uv_handle_t*>(&s), nullptr);
  for (uv_timer_t* t : {&snapshot_timer_, &summary_timer_, &watchdog_timer_, &trim_timer_, &predecessor_timer_,
                        &successor_timer_}) {
    uv_timer_stop(t);
    uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
  }
  for (auto& done : snapshot_waiters_) {
    if (done) done(absl::UnavailableError("shutting down; the final snapshot is written at exit"));
  }
  snapshot_waiters_.clear();
}

control::StatsSnapshot App::Impl::Stats() {
  control::StatsSnapshot s;
  s.version = NODEDNS_VERSION;
  s.now = SteadyNow();
  s.wall_now = SystemWallClock::Get()->Now();
  s.started_at = started_at_;
  s.workers = server_->workers();
  s.counters = server_->Counters();
  cache::Cache& c = server_->cache();
  s.cache_entries = c.entries();
  s.cache_bytes = c.bytes();
  s.cache_max_entries = c.options().max_entries;
  s.cache_max_bytes = c.options().max_bytes;
  s.cache_evictions = c.counters().evictions.load(std::memory_order_relaxed);
  s.cache_expired_removed = c.counters().expired_removed.load(std::memory_order_relaxed);
  auto ups = server_->Upstreams(absl::Seconds(1));
  if (ups.ok()) {
    s.upstreams = std::move(*ups);
  } else {
    s.upstreams_error = std::string(ups.status().message());
  }
  s.snapshot = snap_;
  s.reloads = reloads_;
  s.reload_failures = reload_failures_;
  s.last_reload = last_reload_;
  auto add = [](control::ConnectionStats* to, const control::ConnectionStats& from) {
    to->accepted += from.accepted;
    to->idle_cut += from.idle_cut;
    to->refused += from.refused;
    to->timed_out += from.timed_out;
    to->oversize += from.oversize;
    to->internal_errors += from.internal_errors;
  };
  if (control_) add(&s.control_connections, control_->stats());
  for (const auto& r : retired_control_) add(&s.control_connections, r->stats());
  if (http_) add(&s.http_connections, http_->stats());
  return s;
}

std::vector<control::ZoneSummary> App::Impl::Zones() {
  std::vector<control::ZoneSummary> out;
  for (const config::ZoneConfig& z : server_->config().zones) {
    control::ZoneSummary s{z.name, {}, absl::ToInt64Seconds(z.max_stale), z.last_known_good};
    for (const SocketAddress& a : z.servers) s.servers.push_back(a.ToString());
    out.push_back(std::move(s));
  }
  return out;
}

control::HealthStatus App::Impl::Health() {
  control::HealthStatus h;
  h.healthy = server_->LoopsResponsive(absl::Seconds(2), &h.detail);
  h.ready = ready_ && !stopping_;
  return h;
}

absl::StatusOr<json> App::Impl::Handover(const control::HandoverRequest& request,
                                         const control::PeerCredentials& peer) {
  if (auto st = VerifyStartingNodedns(peer, request.protocol); !st.ok()) {
    spdlog::warn("handover refused (pid {} by its own account, {} in ours): {}", request.pid, peer.pid,
                 std::string(st.message()));
    return st;
  }
  if (successor_serving_) return absl::FailedPreconditionError("already handed over to a successor");
  // A new nodedns is starting beside us: give it a current snapshot.
  json j = {{"pid", getpid()}, {"entries", 0}, {"version", NODEDNS_VERSION}};
  if (!snap_.path.empty()) {
    TimedWrite w = WriteSnapshotNow();
    if (w.result.ok()) j["entries"] = w.result->entries;
  }
  spdlog::info("handover requested by nodedns {} (pid {} by its own account, {} in ours)", request.version,
               request.pid, peer.pid);
  return j;
}

absl::StatusOr<json> App::Impl::Release(const control::ReleaseRequest& request, const control::PeerCredentials& peer) {
  if (successor_serving_) return absl::FailedPreconditionError("already handed over to a successor");
  if (auto st = VerifySuccessor(peer, request, server_->bound_addresses()); !st.ok()) {
    spdlog::warn("release refused (pid {} by its own account, {} in ours): {}", request.pid, peer.pid,
                 std::string(st.message()));
    return st;
  }
  // The successor serves beside us. Our control socket stays until its own
  // replaces it on the path (WatchSuccessor); we stop when told.
  successor_serving_ = true;
  uv_timer_start(&successor_timer_, [](uv_timer_t* t) {
    auto* self = static_cast<Impl*>(t->data);
    Guarded("handover", [self] { self->WatchSuccessor(); });
  }, 200, 200);
  spdlog::info("successor pid {} is serving; it takes over the control socket", request.pid);
  return json{{"pid", getpid()}};
}

absl::StatusOr<json> App::Impl::Reload() {
  last_reload_ = SteadyNow();
  auto next = config::BuildConfig(cl_);
  if (!next.ok()) {
    ++reload_failures_;
    spdlog::error("reload rejected, the running configuration stays: {}", std::string(next.status().message()));
    return next.status();
  }
  auto notes = server_->Reload(*next);
  if (!notes.ok()) {
    ++reload_failures_;
    spdlog::error("reload failed, the running configuration stays: {}", std::string(notes.status().message()));
    return notes.status();
  }
  config_.log_level = next->log_level;
  config_.log_format = next->log_format;
  config_.query_log_sample = next->query_log_sample;
  config_.log_summary_interval = next->log_summary_interval;
  config_.snapshot_interval = next->snapshot_interval;
  ApplyLogSettings(config_.log_format, config_.log_level);
  ArmTimers();
  TrimAfterReload();
  ++reloads_;
  for (const std::string& n : *notes) spdlog::warn("reload: {}", n);
  spdlog::info("configuration reloaded from {}", next->source.empty() ? "the embedded default" : next->source);
  return json{{"notes", *notes}, {"source", next->source}};
}

void App::Impl::Snapshot(Done done) {
  if (snap_.path.empty()) {
    done(absl::FailedPreconditionError("no snapshot path configured (--snapshot PATH or [snapshot] path)"));
    return;
  }
  StartSnapshot(std::move(done));
}

void App::Impl::StartSnapshot(Done done) {
  if (done) snapshot_waiters_.push_back(std::move(done));
  if (snapshot_running_ || stopping_) return;
  snapshot_running_ = true;
  auto* work = new SnapshotWork();
  work->req.data = work;
  work->self = this;
  work->path = snap_.path;
  int rc = uv_queue_work(
      &loop_, &work->req,
      [](uv_work_t* req) {
        auto* w = static_cast<SnapshotWork*>(req->data);
        w->write = WriteTimed(w->self->server_->cache(), w->path);
      },
      [](uv_work_t* req, int status) {
        std::unique_ptr<SnapshotWork> w(static_cast<SnapshotWork*>(req->data));
        Impl* self = w->self;
        self->snapshot_running_ = false;
        Guarded("snapshot", [&] {
          if (status == UV_ECANCELED) w->write.result = absl::CancelledError("snapshot write cancelled");
          self->RecordSnapshot(w->write);
          const TimedWrite& r = w->write;
          absl::StatusOr<json> answer =
              r.result.ok() ? absl::StatusOr<json>(json{{"path", w->path},
                                                        {"entries", r.result->entries},
                                                        {"bytes", r.result->bytes},
                                                        {"seconds", absl::ToDoubleSeconds(r.took)}})
                            : absl::StatusOr<json>(r.result.status());
          std::vector<Done> waiters;
          waiters.swap(self->snapshot_waiters_);
          for (auto& done : waiters) done(answer);
        });
      });
  if (rc != 0) {
    snapshot_running_ = false;
    TimedWrite failed;
    failed.result = server::UvStatus(rc, "uv_queue_work");
    RecordSnapshot(failed);
    delete work;
  }
}

TimedWrite App::Impl::WriteSnapshotNow() {
  TimedWrite w = WriteTimed(server_->cache(), snap_.path);
  RecordSnapshot(w);
  return w;
}

void App::Impl::RecordSnapshot(const TimedWrite& write) {
  const absl::StatusOr<snapshot::WriteResult>& result = write.result;
  if (result.ok()) {
    ++snap_.writes;
    snap_.last_write = SteadyNow();
    snap_.last_entries = result->entries;
    snap_.last_bytes = result->bytes;
    snap_.last_write_seconds = absl::ToDoubleSeconds(write.took);
    if (!snap_.last_error.empty()) spdlog::info("snapshot {}: writing again", snap_.path);
    snap_.last_error.clear();
    spdlog::debug("snapshot {}: {} entries, {} bytes in {:.3f} s", snap_.path, result->entries, result->bytes,
                  snap_.last_write_seconds);
  } else {
    ++snap_.write_failures;
    std::string err(result.status().message());
    // One line per distinct error, not one per interval while the disk stays full.
    if (err != snap_.last_error) {
      spdlog::error("snapshot write failed, the previous snapshot is kept: {}", err);
    }
    snap_.last_error = err;
  }
}

void App::Impl::LogSummary() {
  CounterValues now = server_->Counters();
  control::Totals t = control::ComputeTotals(now), before = control::ComputeTotals(last_summary_);
  int open = 0;
  if (auto ups = server_->Upstreams(absl::Seconds(1)); ups.ok()) {
    for (const auto& u : *ups) open += u.open ? 1 : 0;
  }
  spdlog::info("summary: queries +{} hits +{} misses +{} stale +{} upstream_queries +{} upstream_failures +{} "
               "servfail_sent +{}; cache {} entries; {} breaker(s) open",
               t.queries - before.queries, now.cache_hits - last_summary_.cache_hits,
               now.cache_misses - last_summary_.cache_misses, t.stale_answers - before.stale_answers,
               now.upstream_queries - last_summary_.upstream_queries, t.upstream_failures - before.upstream_failures,
               now.answers_servfail - last_summary_.answers_servfail, server_->cache().entries(), open);
  last_summary_ = now;
}

App::App(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
App::~App() = default;

absl::StatusOr<std::unique_ptr<App>> App::Create(const config::CommandLine& cl, const config::Config& config) {
  auto impl = std::make_unique<Impl>(cl, config);
  if (auto st = impl->Init(); !st.ok()) return st;
  return std::unique_ptr<App>(new App(std::move(impl)));
}

int App::Run() { return impl_->Run(); }

}  // namespace nodedns::app
