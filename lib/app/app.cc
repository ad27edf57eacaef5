#include "lib/app/app.h"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/synchronization/mutex.h"
#include "lib/app/logging.h"
#include "lib/control/client.h"
#include "lib/common/sd_notify.h"
#include "lib/control/stats.h"
#include "lib/control/stream_server.h"
#include "lib/control/unix_socket.h"
#include "lib/dns/name.h"
#include "lib/dns/query_view.h"
#include "lib/netif/node_interface.h"
#include "lib/server/server.h"
#include "lib/server/sockets.h"
#include "lib/snapshot/snapshot.h"
#include "lib/upstream/router.h"

namespace nodedns::app {

using nlohmann::json;

namespace {

json Error(const std::string& message) { return {{"ok", false}, {"error", message}}; }

// Elapsed time and deadlines of the control loop: never the wall clock.
absl::Time SteadyNow() { return SystemSteadyClock::Get()->Now(); }

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
TimedWrite WriteTimed(const cache::Cache& cache, const std::string& path) {
  snapshot::Moment t0 = snapshot::Moment::Now();
  TimedWrite w;
  w.result = snapshot::Write(cache, path, t0);
  w.took = SteadyNow() - t0.time.steady;
  return w;
}

std::string HttpResponse(int status, const char* reason, const std::string& content_type, const std::string& body,
                         bool head) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: " + content_type +
                  "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  if (!head) r += body;
  return r;
}

}  // namespace

class App::Impl {
 public:
  Impl(const config::CommandLine& cl, const config::Config& config) : cl_(cl), config_(config) {}
  ~Impl() {
    if (!loop_initialized_) return;
    // After a failed Init, handles may be open: close them and let the loop
    // run their callbacks, so uv_loop_close succeeds and nothing leaks.
    if (control_) control_->Close();
    if (http_) http_->Close();
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

 private:
  struct SnapshotWork {
    uv_work_t req;
    Impl* self;
    std::string path;
    TimedWrite write;
  };

  absl::Status ListenControl();
  void WriteReady();
  void CompleteHandover();
  void FinishShutdown();
  control::StatsSnapshot Collect();
  void HandleControl(std::string_view request, control::StreamServer::Respond respond);
  void HandleHttp(std::string_view request, control::StreamServer::Respond respond);
  json Dump(const json& req);
  json Flush(const json& req);
  json Reload();
  void StartSnapshot(control::StreamServer::Respond respond);
  void RecordSnapshot(const TimedWrite& write);
  // Writes the snapshot on this thread and records the outcome.
  TimedWrite WriteSnapshotNow();
  void LogSummary();
  void BeginShutdown();
  void ArmTimers();
  static void OnSignal(uv_signal_t* handle, int signum);

  config::CommandLine cl_;
  config::Config config_;  // the running daemon-level settings (log, control, metrics, snapshot)
  uv_loop_t loop_;
  bool loop_initialized_ = false;
  std::unique_ptr<server::Server> server_;
  control::UnixListener control_listener_;
  std::unique_ptr<control::StreamServer> control_;
  std::unique_ptr<control::StreamServer> http_;
  SocketAddress metrics_bound_;
  uv_signal_t signals_[3];
  uv_timer_t snapshot_timer_, summary_timer_, watchdog_timer_;
  absl::Duration watchdog_interval_;
  absl::Time started_at_ = SteadyNow();
  control::SnapshotStats snap_;
  bool snapshot_running_ = false;
  std::vector<control::StreamServer::Respond> snapshot_waiters_;
  uint64_t reloads_ = 0, reload_failures_ = 0;
  absl::Time last_reload_ = absl::InfinitePast();
  CounterValues last_summary_;
  bool ready_ = false;
  bool stopping_ = false;
  // Handover: the process we took over from, and whether a successor has
  // taken over from us.
  pid_t predecessor_pid_ = 0;
  bool successor_serving_ = false;
  bool control_owned_ = true;  // false once handed to a successor
  std::unique_ptr<netif::NodeInterface> netif_;
  uv_timer_t predecessor_timer_, grace_timer_;
  absl::Time grace_deadline_;
};

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
  // Zero-gap upgrade: a nodedns already answers on our control socket. It
  // writes its snapshot for us now; we bind beside it (SO_REUSEPORT), load
  // that snapshot, and take over in Run.
  if (!config_.control_socket.empty() && cl_.takeover) {
    auto answer = control::Call(config_.control_socket, {{"command", "handover"}, {"pid", getpid()}}, absl::Seconds(30));
    if (answer.ok()) {
      if (!answer->value("ok", false) || !(*answer)["pid"].is_number_integer()) {
        return absl::FailedPreconditionError("the nodedns serving on " + config_.control_socket +
                                             " refused the handover: " + answer->value("error", std::string("?")));
      }
      predecessor_pid_ = (*answer)["pid"].get<pid_t>();
      spdlog::info("taking over from nodedns pid {} (its snapshot: {} entries)", predecessor_pid_,
                   answer->value("entries", 0));
    } else if (absl::IsPermissionDenied(answer.status()) || absl::IsDeadlineExceeded(answer.status()) ||
               absl::IsDataLoss(answer.status())) {
      return absl::Status(answer.status().code(), "control socket: " + std::string(answer.status().message()));
    }
    // NotFound / Unavailable: nobody there (or a stale file): a normal start.
  }
  // Without a predecessor the control socket is ours from the start: a live
  // one (another nodedns) is refused here, before anything else is set up.
  // A successor takes it over once it serves (Run).
  if (!config_.control_socket.empty() && !predecessor_pid_) {
    if (auto st = ListenControl(); !st.ok()) return st;
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
    control::StreamServerOptions so;
    so.delimiter = "\r\n\r\n";
    so.max_request = 8192;
    so.timeout = absl::Seconds(5);
    so.oversize = HttpResponse(431, "Request Header Fields Too Large", "text/plain", "request too large\n", false);
    http_ = std::make_unique<control::StreamServer>(
        &loop_, so, [this](std::string_view req, control::StreamServer::Respond r) { HandleHttp(req, r); });
    if (auto st = http_->Start(*fd, /*tcp=*/true); !st.ok()) return st;
  }
  // Every socket is bound and listening (the kernel queues what arrives
  // before the workers run): scripts may start sending. Written before
  // --user takes effect, so its directory need not be the user's.
  if (cl_.ready_file && !predecessor_pid_) WriteReady();
  if (run_as) {
    if (auto st = DropPrivileges(*run_as); !st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status App::Impl::ListenControl() {
  control::UnixSocketOptions o;
  o.path = config_.control_socket;
  o.mode = config_.control_socket_mode;
  o.owner = config_.control_socket_owner;
  o.group = config_.control_socket_group;
  auto l = control::ListenUnix(o);
  if (!l.ok()) {
    return absl::Status(l.status().code(), "control socket: " + std::string(l.status().message()) +
                                               " (set --control-socket PATH, or \"\" to turn it off)");
  }
  control_listener_ = *l;
  control::StreamServerOptions so;
  so.delimiter = "\n";
  so.oversize = json(Error("request too large")).dump() + "\n";
  control_ = std::make_unique<control::StreamServer>(
      &loop_, so, [this](std::string_view req, control::StreamServer::Respond r) { HandleControl(req, r); });
  return control_->Start(l->fd, /*tcp=*/false);
}

void App::Impl::WriteReady() {
  std::vector<std::string> lines;
  for (const auto& a : server_->bound_addresses()) lines.push_back(a.ToString());
  if (http_) lines.push_back("metrics " + metrics_bound_.ToString());
  if (control_) lines.push_back("control " + config_.control_socket);
  if (!WriteReadyFile(*cl_.ready_file, lines)) spdlog::error("cannot write ready file {}", *cl_.ready_file);
}

int App::Impl::Run() {
  server_->Start();
  started_at_ = SteadyNow();
  if (predecessor_pid_) CompleteHandover();
  ready_ = true;
  std::string listening, upstreams;
  for (const auto& a : server_->bound_addresses()) listening += " " + a.ToString();
  for (const auto& z : config_.zones) {
    upstreams += " " + z.name + "->";
    for (size_t i = 0; i < z.servers.size(); ++i) upstreams += (i ? "," : "") + z.servers[i].ToString();
  }
  spdlog::info("nodedns {} listening on{} (udp+tcp), forwarding{}{}{}", NODEDNS_VERSION, listening, upstreams,
               http_ ? "; metrics on http://" + metrics_bound_.ToString() : std::string(),
               control_ ? "; control socket " + config_.control_socket : std::string());
  int signums[3] = {SIGTERM, SIGINT, SIGHUP};
  for (int i = 0; i < 3; ++i) {
    uv_signal_init(&loop_, &signals_[i]);
    signals_[i].data = this;
    uv_signal_start(&signals_[i], &Impl::OnSignal, signums[i]);
  }
  uv_timer_init(&loop_, &snapshot_timer_);
  uv_timer_init(&loop_, &summary_timer_);
  uv_timer_init(&loop_, &watchdog_timer_);
  snapshot_timer_.data = summary_timer_.data = watchdog_timer_.data = this;
  ArmTimers();
  watchdog_interval_ = SdWatchdogInterval();
  if (watchdog_interval_ > absl::ZeroDuration()) {
    uint64_t every = std::max<uint64_t>(1, absl::ToInt64Milliseconds(watchdog_interval_) / 2);
    uv_timer_start(&watchdog_timer_, [](uv_timer_t* t) {
      auto* self = static_cast<Impl*>(t->data);
      std::string why;
      // A keep-alive only while every worker loop turns: a stuck worker
      // makes systemd restart us.
      if (self->server_->LoopsResponsive(std::max(self->watchdog_interval_ / 2, absl::Seconds(1)), &why)) {
        (void)SdNotify("WATCHDOG=1");
      } else {
        spdlog::error("watchdog keep-alive withheld: {}", why);
      }
    }, every, every);
  }
  if (auto st = SdNotify("READY=1\nSTATUS=serving\nMAINPID=" + std::to_string(getpid())); !st.ok()) {
    spdlog::warn("sd_notify: {}", std::string(st.message()));
  }

  uv_run(&loop_, UV_RUN_DEFAULT);

  // Workers are stopped and the loop is idle: the last snapshot, in full,
  // unless a successor took over (it loaded ours and writes its own).
  if (successor_serving_) {
    spdlog::info("snapshot: left to the successor");
  } else if (!snap_.path.empty()) {
    WriteSnapshotNow();
  }
  if (control_ && control_owned_) control::RemoveUnixSocket(config_.control_socket, control_listener_);
  if (netif_) {
    if (successor_serving_) {
      spdlog::info("interface {}: left to the successor", config_.interface_name);
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
  return 0;
}

void App::Impl::CompleteHandover() {
  // We serve (beside the predecessor): ask it to hand over the control socket.
  auto answer = control::Call(config_.control_socket, {{"command", "release"}, {"pid", getpid()}}, absl::Seconds(10));
  if (!answer.ok() || !answer->value("ok", false)) {
    spdlog::warn("handover: the predecessor did not release the control socket ({}); taking it anyway",
                 answer.ok() ? answer->value("error", std::string("?")) : std::string(answer.status().message()));
  }
  if (auto st = ListenControl(); !st.ok()) {
    spdlog::error("handover: {}; running without a control socket", std::string(st.message()));
    control_.reset();
  }
  if (cl_.ready_file) WriteReady();
  spdlog::info("serving; nodedns pid {} hands over and stops when told to", predecessor_pid_);
  // Once the predecessor has exited, its steering program goes, so the
  // kernel spreads queries over all our workers again.
  uv_timer_init(&loop_, &predecessor_timer_);
  predecessor_timer_.data = this;
  uv_timer_start(&predecessor_timer_, [](uv_timer_t* t) {
    auto* self = static_cast<Impl*>(t->data);
    if (kill(self->predecessor_pid_, 0) == 0 || errno != ESRCH) return;
    if (auto st = self->server_->DetachSteering(); !st.ok()) {
      spdlog::warn("handover: {}", std::string(st.message()));
    }
    spdlog::info("handover: nodedns pid {} has exited", self->predecessor_pid_);
    uv_timer_stop(t);
    uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
    self->predecessor_pid_ = 0;
  }, 100, 100);
}

void App::Impl::ArmTimers() {
  uv_timer_stop(&snapshot_timer_);
  uv_timer_stop(&summary_timer_);
  if (!snap_.path.empty()) {
    uint64_t every = static_cast<uint64_t>(absl::ToInt64Milliseconds(config_.snapshot_interval));
    uv_timer_start(&snapshot_timer_, [](uv_timer_t* t) {
      static_cast<Impl*>(t->data)->StartSnapshot(nullptr);
    }, every, every);
  }
  if (config_.log_summary_interval > absl::ZeroDuration()) {
    uint64_t every = static_cast<uint64_t>(absl::ToInt64Milliseconds(config_.log_summary_interval));
    uv_timer_start(&summary_timer_, [](uv_timer_t* t) { static_cast<Impl*>(t->data)->LogSummary(); }, every, every);
  }
}

void App::Impl::OnSignal(uv_signal_t* handle, int signum) {
  auto* self = static_cast<Impl*>(handle->data);
  if (signum == SIGHUP) {
    spdlog::info("SIGHUP received: reloading the configuration");
    self->Reload();
    return;
  }
  spdlog::info("signal {} received: shutting down", signum);
  self->BeginShutdown();
}

void App::Impl::BeginShutdown() {
  if (stopping_) return;
  stopping_ = true;
  ready_ = false;
  (void)SdNotify("STOPPING=1\nSTATUS=shutting down");
  if (successor_serving_ || config_.handover_grace <= absl::ZeroDuration()) {
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
    self->FinishShutdown();
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
  if (http_) http_->Close();
  // Answers what is in flight, then closes the workers' sockets.
  server_->Stop();
  for (auto& s : signals_) uv_close(reinterpret_cast<uv_handle_t*>(&s), nullptr);
  for (uv_timer_t* t : {&snapshot_timer_, &summary_timer_, &watchdog_timer_}) {
    uv_timer_stop(t);
    uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
  }
  if (predecessor_pid_) {
    uv_timer_stop(&predecessor_timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&predecessor_timer_), nullptr);
  }
  for (auto& r : snapshot_waiters_) {
    if (r) r(json(Error("shutting down; the final snapshot is written at exit")).dump() + "\n");
  }
  snapshot_waiters_.clear();
}

control::StatsSnapshot App::Impl::Collect() {
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
  return s;
}

void App::Impl::HandleControl(std::string_view request, control::StreamServer::Respond respond) {
  auto reply = [&respond](const json& j) { respond(j.dump() + "\n"); };
  json req = json::parse(request, nullptr, /*allow_exceptions=*/false);
  if (req.is_discarded() || !req.is_object() || !req.contains("command") || !req["command"].is_string()) {
    reply(Error("malformed request: expected one JSON object with a \"command\" string"));
    return;
  }
  std::string cmd = req["command"];
  if (cmd == "stats") {
    json j = control::StatsJson(Collect());
    j["ok"] = true;
    reply(j);
  } else if (cmd == "upstreams") {
    control::StatsSnapshot s = Collect();
    json zones = json::array();
    for (const config::ZoneConfig& z : server_->config().zones) {
      json servers = json::array();
      for (const SocketAddress& a : z.servers) servers.push_back(a.ToString());
      zones.push_back({{"zone", z.name}, {"servers", servers}, {"max_stale_seconds", absl::ToInt64Seconds(z.max_stale)},
                       {"last_known_good", z.last_known_good}});
    }
    json j = {{"ok", true}, {"upstreams", control::UpstreamsJson(s)}, {"zones", zones}};
    if (!s.upstreams_error.empty()) j["upstreams_error"] = s.upstreams_error;
    reply(j);
  } else if (cmd == "dump") {
    reply(Dump(req));
  } else if (cmd == "flush") {
    reply(Flush(req));
  } else if (cmd == "reload") {
    reply(Reload());
  } else if (cmd == "snapshot") {
    if (snap_.path.empty()) {
      reply(Error("no snapshot path configured (--snapshot PATH or [snapshot] path)"));
    } else {
      StartSnapshot(respond);
    }
  } else if (cmd == "handover") {
    // A new nodedns is starting beside us: give it a current snapshot.
    json j = {{"ok", true}, {"pid", getpid()}, {"entries", 0}};
    if (!snap_.path.empty()) {
      TimedWrite w = WriteSnapshotNow();
      if (w.result.ok()) j["entries"] = w.result->entries;
    }
    spdlog::info("handover requested by pid {}", req.value("pid", 0));
    reply(j);
  } else if (cmd == "release") {
    // The successor serves: it takes the control socket; we stop when told.
    successor_serving_ = true;
    reply({{"ok", true}, {"pid", getpid()}});
    control_->StopListening();
    control::RemoveUnixSocket(config_.control_socket, control_listener_);
    control_owned_ = false;  // the path is the successor's from now on
    spdlog::info("successor pid {} is serving; control socket handed over", req.value("pid", 0));
  } else if (cmd == "health") {
    std::string why;
    bool loops = server_->LoopsResponsive(absl::Seconds(2), &why);
    reply({{"ok", true}, {"healthy", loops}, {"ready", ready_ && !stopping_}, {"detail", loops ? "" : why}});
  } else {
    reply(Error("unknown command '" + cmd + "'"));
  }
}

json App::Impl::Dump(const json& req) {
  std::string filter;
  if (req.contains("name")) {
    if (!req["name"].is_string()) return Error("dump: \"name\" must be a string");
    auto wire = dns::NameFromText(req["name"].get<std::string>());
    if (!wire.ok()) return Error("dump: " + std::string(wire.status().message()));
    filter = dns::Lowercase(*wire);
  }
  size_t limit = 10000;
  if (req.contains("limit") && req["limit"].is_number_unsigned()) limit = req["limit"].get<size_t>();
  absl::Time now = SteadyNow();
  json entries = json::array();
  size_t matched = 0;
  static constexpr const char* kKinds[] = {"positive", "nxdomain", "nodata", "servfail", "other"};
  for (const cache::EntrySummary& e : server_->cache().Summaries()) {
    std::string_view qname = dns::CacheKeyQname(e.key);
    if (!filter.empty() && qname != filter) continue;
    if (++matched > limit) continue;
    bool fresh = now < e.expires_at;
    json j = {{"name", dns::NameToText(qname)},
              {"type", dns::TypeToText(dns::CacheKeyQtype(e.key))},
              {"dnssec_ok", dns::CacheKeyDo(e.key)},
              {"kind", kKinds[static_cast<int>(e.kind)]},
              {"state", fresh ? "fresh" : "stale"},
              {"age_seconds", absl::ToInt64Seconds(now - e.inserted_at)},
              {"bytes", e.image_len}};
    if (fresh) {
      j["ttl_remaining_seconds"] = absl::ToInt64Seconds(e.expires_at - now);
    } else {
      j["stale_seconds"] = absl::ToInt64Seconds(now - e.expires_at);
      j["stale_remaining_seconds"] = std::max<int64_t>(0, absl::ToInt64Seconds(e.stale_until - now));
    }
    entries.push_back(std::move(j));
  }
  return {{"ok", true}, {"entries", entries}, {"matched", matched}, {"truncated", matched > limit}};
}

json App::Impl::Flush(const json& req) {
  if (req.value("all", false)) {
    size_t n = server_->cache().entries();
    server_->cache().Clear();
    spdlog::info("cache flushed by dnsctl: {} entries removed", n);
    return {{"ok", true}, {"removed", n}};
  }
  if (!req.contains("name") || !req["name"].is_string()) return Error("flush: give a name or all");
  auto wire = dns::NameFromText(req["name"].get<std::string>());
  if (!wire.ok()) return Error("flush: " + std::string(wire.status().message()));
  size_t n = server_->cache().EraseName(dns::Lowercase(*wire));
  spdlog::info("cache flush of {} by dnsctl: {} entries removed", req["name"].get<std::string>(), n);
  return {{"ok", true}, {"removed", n}};
}

json App::Impl::Reload() {
  last_reload_ = SteadyNow();
  auto next = config::BuildConfig(cl_);
  if (!next.ok()) {
    ++reload_failures_;
    spdlog::error("reload rejected, the running configuration stays: {}", std::string(next.status().message()));
    return Error(std::string(next.status().message()));
  }
  auto notes = server_->Reload(*next);
  if (!notes.ok()) {
    ++reload_failures_;
    spdlog::error("reload failed, the running configuration stays: {}", std::string(notes.status().message()));
    return Error(std::string(notes.status().message()));
  }
  config_.log_level = next->log_level;
  config_.log_format = next->log_format;
  config_.query_log_sample = next->query_log_sample;
  config_.log_summary_interval = next->log_summary_interval;
  config_.snapshot_interval = next->snapshot_interval;
  ApplyLogSettings(config_.log_format, config_.log_level);
  ArmTimers();
  ++reloads_;
  for (const std::string& n : *notes) spdlog::warn("reload: {}", n);
  spdlog::info("configuration reloaded from {}", next->source.empty() ? "the embedded default" : next->source);
  return {{"ok", true}, {"notes", *notes}, {"source", next->source}};
}

void App::Impl::StartSnapshot(control::StreamServer::Respond respond) {
  if (respond) snapshot_waiters_.push_back(std::move(respond));
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
        if (status == UV_ECANCELED) w->write.result = absl::CancelledError("snapshot write cancelled");
        self->RecordSnapshot(w->write);
        const TimedWrite& r = w->write;
        json reply;
        if (r.result.ok()) {
          reply = {{"ok", true}, {"path", w->path}, {"entries", r.result->entries},
                   {"bytes", r.result->bytes}, {"seconds", absl::ToDoubleSeconds(r.took)}};
        } else {
          reply = Error(std::string(r.result.status().message()));
        }
        for (auto& r : self->snapshot_waiters_) r(reply.dump() + "\n");
        self->snapshot_waiters_.clear();
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

void App::Impl::HandleHttp(std::string_view request, control::StreamServer::Respond respond) {
  // "GET /metrics HTTP/1.1\r\n..."
  size_t line_end = request.find("\r\n");
  std::string_view line = request.substr(0, line_end);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
      line.substr(sp2 + 1).substr(0, 7) != "HTTP/1.") {
    respond(HttpResponse(400, "Bad Request", "text/plain", "bad request\n", false));
    return;
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view path = line.substr(sp1 + 1, sp2 - sp1 - 1);
  path = path.substr(0, path.find('?'));
  bool head = method == "HEAD";
  if (method != "GET" && !head) {
    respond(HttpResponse(405, "Method Not Allowed", "text/plain", "only GET and HEAD\n", false));
    return;
  }
  if (path == "/metrics") {
    respond(HttpResponse(200, "OK", "text/plain; version=0.0.4; charset=utf-8", control::PrometheusText(Collect()),
                         head));
  } else if (path == "/healthz") {
    std::string why;
    if (server_->LoopsResponsive(absl::Seconds(2), &why)) {
      respond(HttpResponse(200, "OK", "text/plain", "ok\n", head));
    } else {
      respond(HttpResponse(503, "Service Unavailable", "text/plain", why + "\n", head));
    }
  } else if (path == "/readyz") {
    if (ready_ && !stopping_) {
      respond(HttpResponse(200, "OK", "text/plain", "ready\n", head));
    } else {
      respond(HttpResponse(503, "Service Unavailable", "text/plain", "not ready\n", head));
    }
  } else {
    respond(HttpResponse(404, "Not Found", "text/plain", "not found: /metrics, /healthz, /readyz\n", head));
  }
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
