#include "lib/app/app.h"

#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/app/control_socket.h"
#include "lib/app/handover.h"
#include "lib/app/http_endpoints.h"
#include "lib/app/interface.h"
#include "lib/app/logging.h"
#include "lib/app/loop_check.h"
#include "lib/app/supervisor.h"
#include "lib/app/peer_check.h"
#include "lib/app/process.h"
#include "lib/common/guarded.h"
#include "lib/common/periodic_timer.h"
#include "lib/common/sd_notify.h"
#include "lib/common/uv_status.h"
#include "lib/control/control_target.h"
#include "lib/control/stats.h"
#include "lib/control/stream_server.h"
#include "lib/server/server.h"
#include "lib/server/sockets.h"
#include "lib/snapshot/keeper.h"

namespace nodedns::app {

using nlohmann::json;

// The composition root: builds the rooms in order (process, control socket,
// handover, interface, server, snapshot, HTTP), runs the control loop with
// the signals, the watchdog and the log summary, and is the ControlTarget the
// control socket and the HTTP endpoint talk to.
class App::Impl : public control::ControlTarget {
 public:
  Impl(const config::CommandLine& cl, const config::Config& config)
      : cl_(cl), config_(config), summary_timer_("summary", [this] { LogSummary(); }) {}
  ~Impl() override {
    if (!loop_initialized_) return;
    // After a failed Init, handles may be open: close them and let the loop
    // run their callbacks, so uv_loop_close succeeds and nothing leaks.
    CloseHandles();
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    // Only if it is still the socket we made (Run removes it on a clean exit).
    if (control_) control_->RemoveIfOwned();
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
  absl::Time CacheNow() override { return clock_->Now(); }
  control::HealthStatus Health() override;
  absl::StatusOr<json> Reload() override;
  void Snapshot(Done done) override;
  absl::StatusOr<json> Handover(const control::HandoverRequest& request,
                                const control::PeerCredentials& peer) override {
    return handover_->OnHandover(request, peer);
  }
  absl::StatusOr<json> Release(const control::ReleaseRequest& request, const control::PeerCredentials& peer) override {
    return handover_->OnRelease(request, peer);
  }

 private:
  void WriteReady();
  absl::Status StartSignals();
  void StartWatchdog();
  void ArmTimers();
  void TrimAfterReload();
  void LogSummary();
  // `immediate`: no grace period (a failed takeover).
  void BeginShutdown(bool immediate = false);
  void FinishShutdown();
  void CloseHandles();
  void LogCounters();
  static void OnSignal(uv_signal_t* handle, int signum);

  config::CommandLine cl_;
  config::Config config_;  // the running daemon-level settings (log, control, metrics, snapshot)
  // Elapsed time and deadlines of the control loop and the data plane: never
  // the wall clock. The one clock the rooms below are given.
  const SteadyClock* const clock_ = SystemSteadyClock::Get();
  uv_loop_t loop_;
  bool loop_initialized_ = false;
  std::unique_ptr<server::Server> server_;
  std::unique_ptr<ControlSocket> control_;
  std::unique_ptr<app::Handover> handover_;
  std::unique_ptr<snapshot::Keeper> keeper_;
  std::unique_ptr<HttpEndpoints> http_;
  std::unique_ptr<netif::NodeInterface> netif_;
  uv_signal_t signals_[3];
  int signals_initialized_ = 0;
  PeriodicTimer summary_timer_;
  uv_timer_t watchdog_timer_, trim_timer_;
  bool timers_initialized_ = false;
  bool handles_closed_ = false;
  int trims_left_ = 0;
  absl::Duration watchdog_interval_;
  absl::Time started_at_ = clock_->Now();
  uint64_t reloads_ = 0, reload_failures_ = 0;
  const std::optional<SupervisorState> supervisor_ = SupervisorStateFromEnvironment();  // --supervise
  absl::Time last_reload_ = absl::InfinitePast();
  MetricSet last_summary_;
  bool ready_ = false;
  bool stopping_ = false;
  int exit_code_ = 0;
};

absl::Status App::Impl::Init() {
  // A wrong --user fails before anything is bound or announced.
  std::optional<RunAs> run_as;
  if (cl_.user) {
    auto as = LookUpUser(*cl_.user);
    if (!as.ok()) return as.status();
    run_as = *as;
  }
  if (int rc = uv_loop_init(&loop_); rc != 0) return UvStatus(rc, "uv_loop_init");
  loop_initialized_ = true;
  for (uv_timer_t* t : {&watchdog_timer_, &trim_timer_}) {
    if (int rc = uv_timer_init(&loop_, t); rc != 0) return UvStatus(rc, "uv_timer_init");
    t->data = this;
  }
  timers_initialized_ = true;
  if (auto st = summary_timer_.Init(&loop_); !st.ok()) return st;

  control_ = std::make_unique<ControlSocket>(&loop_, ControlSocketOptionsFor(config_), this);
  pid_t predecessor = 0;
  if (control_->enabled() && cl_.takeover) {
    auto pid = TakeOver(control_->path());
    if (!pid.ok()) return pid.status();
    predecessor = *pid;
  }
  // Without a predecessor the control socket is ours from the start: a live
  // one (another nodedns) is refused here, before anything else is set up.
  // A successor takes it over once it serves (Run).
  if (!predecessor) {
    if (auto st = control_->Listen(/*replace_live=*/false); !st.ok()) return st;
    // Nor may a nodedns with another control socket serve our addresses:
    // beside it we would silently get half its queries and scrapes.
    if (auto st = RefuseTwins(config_.listen, HttpEndpoints::Configured(config_.metrics_listen, config_.health_listen));
        !st.ok()) {
      return st;
    }
  }
  // The listen addresses must exist before they can be bound.
  if (config_.interface_setup) {
    auto ni = SetUpInterface(config_);
    if (!ni.ok()) return ni.status();
    netif_ = std::move(*ni);
  }
  auto server = server::Server::Create(config_, clock_);
  if (!server.ok()) return server.status();
  server_ = std::move(*server);
  // Bound: now queries may skip conntrack to reach us.
  if (netif_) {
    if (auto st = InstallInterfaceRules(*netif_, config_); !st.ok()) return st;
  }

  // The snapshot first, so the first query already finds the cache warm.
  keeper_ = std::make_unique<snapshot::Keeper>(&loop_, &server_->cache(), config_.snapshot_path);
  if (auto st = keeper_->Init(); !st.ok()) return st;
  keeper_->Load([this](std::string_view q) { return server_->MaxStaleBeforeStart(q); });

  handover_ = std::make_unique<app::Handover>(
      app::Handover::Parts{&loop_, clock_, control_.get(), server_.get(), keeper_.get(),
                           [this] {
                             if (cl_.ready_file) WriteReady();
                           },
                           [this] {
                             exit_code_ = 1;
                             BeginShutdown(/*immediate=*/true);
                           },
                           [this] { return stopping_; }},
      predecessor);
  if (auto st = handover_->Init(); !st.ok()) return st;

  http_ = std::make_unique<HttpEndpoints>(&loop_, this);
  if (auto st = http_->Start(config_.metrics_listen, config_.health_listen); !st.ok()) return st;
  // Bound: the same check again, for a twin that bound in the meantime.
  if (!predecessor) {
    if (auto st = RefuseTwins(server_->bound_addresses(), http_->addresses()); !st.ok()) return st;
  }
  // Caught from here on (handled once the loop runs): a SIGTERM right after
  // the ready file must stop us gracefully, not by the default action.
  if (auto st = StartSignals(); !st.ok()) return st;
  // Every socket is bound and listening (the kernel queues what arrives
  // before the workers run): scripts may start sending. Written before
  // --user takes effect, so its directory need not be the user's.
  if (cl_.ready_file && !predecessor) WriteReady();
  if (run_as) {
    if (auto st = DropPrivileges(*run_as); !st.ok()) return st;
  }
  return absl::OkStatus();
}

void App::Impl::WriteReady() {
  std::vector<std::string> lines;
  for (const auto& a : server_->bound_addresses()) lines.push_back(a.ToString());
  for (const auto& b : http_->bound()) lines.push_back(b.what + " " + b.address.ToString());
  if (control_->active()) lines.push_back("control " + control_->path());
  if (!WriteReadyFile(*cl_.ready_file, lines)) spdlog::error("cannot write ready file {}", *cl_.ready_file);
}

absl::Status App::Impl::StartSignals() {
  int signums[3] = {SIGTERM, SIGINT, SIGHUP};
  for (int i = 0; i < 3; ++i) {
    if (int rc = uv_signal_init(&loop_, &signals_[i]); rc != 0) return UvStatus(rc, "uv_signal_init");
    signals_[i].data = this;
    signals_initialized_ = i + 1;
    if (int rc = uv_signal_start(&signals_[i], &Impl::OnSignal, signums[i]); rc != 0) {
      return UvStatus(rc, "uv_signal_start");
    }
  }
  return absl::OkStatus();
}

int App::Impl::Run() {
  server_->Start();
  started_at_ = clock_->Now();
  // A successor shares its sockets with its predecessor, which would see
  // half of the probes come back: the start-up probe is for a fresh start.
  if (!handover_->predecessor()) {
    if (auto st = CheckForwardingLoops(config_.zones, nullptr, &server_->loop_probes()); !st.ok()) {
      spdlog::error("{}", std::string(st.message()));
      exit_code_ = 1;
      BeginShutdown(/*immediate=*/true);
    }
  }
  if (handover_->predecessor()) handover_->Complete();
  if (!stopping_) ready_ = true;
  std::string listening, upstreams, http;
  for (const auto& b : http_->bound()) http += "; " + b.what + " on http://" + b.address.ToString();
  for (const auto& a : server_->bound_addresses()) listening += " " + a.ToString();
  for (const auto& z : config_.zones) {
    upstreams += " " + z.name + "->";
    for (size_t i = 0; i < z.servers.size(); ++i) upstreams += (i ? "," : "") + z.servers[i].ToString();
  }
  spdlog::info("nodedns {} listening on{} (udp+tcp), forwarding{}{}{}", NODEDNS_VERSION, listening, upstreams,
               http,
               control_->active() ? "; control socket " + control_->path() : std::string());
  // A failed takeover has already closed the timers: nothing to arm.
  if (!stopping_) {
    ArmTimers();
    StartWatchdog();
    if (auto st = SdNotify("READY=1\nSTATUS=serving\nMAINPID=" + std::to_string(getpid())); !st.ok()) {
      spdlog::warn("sd_notify: {}", std::string(st.message()));
    }
  }

  uv_run(&loop_, UV_RUN_DEFAULT);

  // Workers are stopped and the loop is idle: the last snapshot, in full,
  // unless a successor took over (it loaded ours and writes its own).
  if (handover_->successor_serving()) {
    spdlog::info("snapshot: left to the successor");
  } else if (keeper_->enabled() && exit_code_ == 0) {
    keeper_->WriteNow();
  }
  control_->RemoveIfOwned();
  if (netif_) {
    TearDownInterface(*netif_, config_,
                      handover_->successor_serving() ? "successor"
                      : handover_->LivePredecessor() ? "predecessor"
                                                     : nullptr);
    netif_.reset();
  }
  LogCounters();
  server_.reset();
  spdlog::info("stopped");
  return exit_code_;
}

void App::Impl::StartWatchdog() {
  watchdog_interval_ = SdWatchdogInterval();
  if (watchdog_interval_ <= absl::ZeroDuration()) return;
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

void App::Impl::LogCounters() {
  MetricSet v;
  server_->AppendMetrics(&v);
  server_->cache().AppendMetrics(&v);
  spdlog::info("counters: {}", CounterLine(v));
}

void App::Impl::ArmTimers() {
  keeper_->SetInterval(config_.snapshot_interval);
  summary_timer_.SetPeriod(config_.log_summary_interval);
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
  keeper_->Close();  // no more periodic or requested writes; the last one is written at exit
  if (immediate || handover_->successor_serving() || config_.handover_grace <= absl::ZeroDuration()) {
    FinishShutdown();
    return;
  }
  handover_->WaitForSuccessor(config_.handover_grace, [this] { FinishShutdown(); });
}

void App::Impl::FinishShutdown() {
  if (handover_->successor_serving()) {
    // New datagrams and connections go to the successor from here on; what
    // is already queued on our sockets is still read and answered.
    if (auto st = server_->SteerToSuccessor(); st.ok()) {
      spdlog::info("handover: new queries go to the successor; answering what is queued and in flight");
    } else {
      spdlog::warn("handover: {}", std::string(st.message()));
    }
  }
  // Answers what is in flight, then closes the workers' sockets.
  server_->Stop();
  CloseHandles();
}

void App::Impl::CloseHandles() {
  if (handles_closed_) return;
  handles_closed_ = true;
  if (control_) control_->Close();
  if (http_) http_->Close();
  if (keeper_) keeper_->Close();
  if (handover_) handover_->Close();
  summary_timer_.Close();
  for (int i = 0; i < signals_initialized_; ++i) uv_close(reinterpret_cast<uv_handle_t*>(&signals_[i]), nullptr);
  if (timers_initialized_) {
    for (uv_timer_t* t : {&watchdog_timer_, &trim_timer_}) {
      uv_timer_stop(t);
      uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
    }
  }
}

control::StatsSnapshot App::Impl::Stats() {
  control::StatsSnapshot s;
  s.version = NODEDNS_VERSION;
  s.now = clock_->Now();
  s.wall_now = SystemWallClock::Get()->Now();
  s.started_at = started_at_;
  s.workers = server_->workers();
  // The exported set, composed of each component's own list.
  server_->AppendMetrics(&s.metrics);
  server_->cache().AppendMetrics(&s.metrics);
  auto ups = server_->Upstreams(absl::Seconds(1));
  if (ups.ok()) {
    s.upstreams = std::move(*ups);
  } else {
    s.upstreams_error = std::string(ups.status().message());
  }
  s.snapshot = keeper_->stats();
  snapshot::AppendKeeperMetrics(s.snapshot, s.now, &s.metrics);
  s.metrics.Counter("reloads", "count", "Configuration reloads applied", static_cast<double>(reloads_),
                    "reloads_total");
  s.metrics.Counter("reloads", "failures", "Configuration reloads rejected (the running configuration stayed)",
                    static_cast<double>(reload_failures_), "reload_failures_total");
  s.last_reload = last_reload_;
  if (supervisor_) {
    supervisor_->AppendMetrics(&s.metrics);
    s.supervisor_last_exit = supervisor_->last_exit;
  }
  s.mirrors = server_->Mirrors();
  s.control_connections = control_->stats();
  if (http_) s.http_connections = http_->stats();
  return s;
}

std::vector<control::ZoneSummary> App::Impl::Zones() {
  std::vector<control::ZoneSummary> out;
  for (const config::ZoneConfig& z : config_.zones) {
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

absl::StatusOr<json> App::Impl::Reload() {
  last_reload_ = clock_->Now();
  auto next = config::BuildConfig(cl_);
  if (!next.ok()) {
    ++reload_failures_;
    spdlog::error("reload rejected, the running configuration stays: {}", std::string(next.status().message()));
    return next.status();
  }
  config::Config effective = *next;
  std::vector<std::string> notes = config::KeepRestartOnly(config_, &effective);
  absl::Status st = CheckForwardingLoops(effective.zones, &config_.zones, &server_->loop_probes());
  if (st.ok()) st = server_->Reload(effective);
  if (!st.ok()) {
    ++reload_failures_;
    spdlog::error("reload failed, the running configuration stays: {}", std::string(st.message()));
    return st;
  }
  static_cast<server::ServerOptions&>(config_) = effective;  // the data plane's part, as now in force
  config_.log_level = next->log_level;
  config_.log_format = next->log_format;
  config_.log_summary_interval = next->log_summary_interval;
  config_.snapshot_interval = next->snapshot_interval;
  ApplyLogSettings(config_.log_format, config_.log_level);
  if (!stopping_) ArmTimers();
  TrimAfterReload();
  ++reloads_;
  for (const std::string& n : notes) spdlog::warn("reload: {}", n);
  spdlog::info("configuration reloaded from {}", next->source.empty() ? "the embedded default" : next->source);
  return json{{"notes", notes}, {"source", next->source}};
}

void App::Impl::Snapshot(Done done) {
  keeper_->WriteAsync([path = config_.snapshot_path, done = std::move(done)](const snapshot::TimedWrite& w) {
    if (!w.result.ok()) {
      done(w.result.status());
      return;
    }
    done(json{{"path", path},
              {"entries", w.result->entries},
              {"bytes", w.result->bytes},
              {"seconds", absl::ToDoubleSeconds(w.took)}});
  });
}

void App::Impl::LogSummary() {
  MetricSet now;
  server_->AppendMetrics(&now);
  control::Totals t = control::ComputeTotals(now), before = control::ComputeTotals(last_summary_);
  auto delta = [&](const char* name) { return now.GetCount("", name) - last_summary_.GetCount("", name); };
  int open = 0;
  if (auto ups = server_->Upstreams(absl::Seconds(1)); ups.ok()) {
    for (const auto& u : *ups) open += u.open ? 1 : 0;
  }
  spdlog::info("summary: queries +{} hits +{} misses +{} stale +{} upstream_queries +{} upstream_failures +{} "
               "servfail_sent +{}; cache {} entries; {} breaker(s) open",
               t.queries - before.queries, delta("cache_hits"), delta("cache_misses"),
               t.stale_answers - before.stale_answers, delta("upstream_queries"),
               t.upstream_failures - before.upstream_failures, delta("answers_servfail"), server_->cache().entries(),
               open);
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
