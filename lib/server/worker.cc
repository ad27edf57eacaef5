#include "lib/server/worker.h"

#include "lib/server/pins.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "lib/dns/name.h"
#include "lib/common/uv_status.h"
#include "lib/server/sockets.h"

namespace nodedns::server {

struct Worker::Generation {
  // Declared in dependency order: destroyed resolver first, transports last.
  std::vector<std::unique_ptr<upstream::ServerChannel>> transports;
  std::vector<std::unique_ptr<upstream::UpstreamPool>> pools;
  std::vector<std::unique_ptr<upstream::Zone>> zones;
  upstream::Router router;
  std::unique_ptr<resolver::Resolver> resolver;
  std::unique_ptr<resolver::PinRefresher> pins;  // the first worker's only
  absl::Duration longest_query;  // the longest an upstream query can take
  absl::Time drain_deadline = absl::InfiniteFuture();
  bool shut_down = false;

  void Shutdown() {
    if (shut_down) return;
    shut_down = true;
    pins.reset();
    for (auto& p : pools) p->CancelQueued();
    for (auto& t : transports) t->Shutdown();
  }
};

namespace {

constexpr uint64_t kHeartbeatMs = 250;
constexpr int kTcpNice = 5;


}  // namespace

upstream::PoolOptions PoolOptionsFor(const ServerOptions& options, const ZoneOptions& z) {
  upstream::PoolOptions po = options.upstream;
  po.zone = z.name;
  return po;
}

Worker::Worker(int index, cache::Cache* cache, const SteadyClock* clock)
    : index_(index), clock_(clock), cache_(cache) {}

absl::StatusOr<std::unique_ptr<Worker::Generation>> Worker::BuildGeneration(const ServerOptions& options) {
  auto g = std::make_unique<Generation>();
  g->longest_query = options.transport.longest();
  // Jitter (probes, prefetch) must differ between nodes, or thousands of
  // them would act in step: seed from the system.
  std::random_device seeder;
  for (const ZoneOptions& z : options.zones) {
    std::vector<upstream::UpstreamPool::ServerSpec> specs;
    for (const SocketAddress& server : z.servers) {
      upstream::ServerChannelOptions o;
      o.name = z.name + " " + server.ToString();
      o.server = server;
      o.transport = options.transport;
      o.protocol = z.transport;
      auto set = upstream::ServerChannel::Create(&loop_, &timers_, clock_, &upstream_counters_, o);
      if (!set.ok()) {
        g->Shutdown();
        return set.status();
      }
      specs.push_back({server.ToString(), set->get()});
      g->transports.push_back(std::move(*set));
    }
    upstream::PoolOptions po = PoolOptionsFor(options, z);
    g->pools.push_back(std::make_unique<upstream::UpstreamPool>(po, std::move(specs), clock_, &timers_, &upstream_counters_,
                                                                seeder()));
    auto zone = std::make_unique<upstream::Zone>();
    zone->name = z.name;
    zone->upstream = g->pools.back().get();
    zone->max_stale = z.max_stale;
    zone->last_known_good = z.last_known_good;
    zone->filter_aaaa = z.filter_aaaa;
    auto wire = dns::NameFromText(z.name);
    if (!wire.ok()) {
      g->Shutdown();
      return wire.status();
    }
    zone->wire_length = wire->size();
    g->router.AddZone(*wire, zone.get());
    g->zones.push_back(std::move(zone));
  }
  g->resolver = std::make_unique<resolver::Resolver>(options.resolver, cache_, &g->router, clock_, &timers_, &resolver_counters_, seeder(), loop_probes_);
  // One pin refresher per node, on the first worker.
  if (index_ == 0) {
    auto pins = PinnedKeysFor(options);
    if (!pins.empty()) {
      g->pins = std::make_unique<resolver::PinRefresher>(std::move(pins), g->resolver.get(), cache_, clock_, &timers_,
                                                         options.resolver.pin_refresh_min, seeder());
      g->pins->Start();
    }
  }
  return g;
}

absl::Duration Worker::MaxStale(std::string_view qname_wire) const {
  const upstream::Zone* z = current_ ? current_->router.Route(qname_wire) : nullptr;
  return z ? z->max_stale : absl::ZeroDuration();
}

absl::StatusOr<std::unique_ptr<Worker>> Worker::Create(int index, const ServerOptions& options, cache::Cache* cache,
                                                       const SteadyClock* clock, TcpBudget* tcp_budget,
                                                       resolver::LoopProbes* loop_probes,
                                                       std::vector<int> udp_fds,
                                                       std::vector<int> tcp_fds) {
  std::unique_ptr<Worker> w(new Worker(index, cache, clock));
  w->loop_probes_ = loop_probes;
  w->AssertOnLoopThread();  // not started: the creating thread holds the role
  auto fail = [&](absl::Status st) {
    for (int fd : udp_fds) close(fd);
    for (int fd : tcp_fds) close(fd);
    return st;
  };
  if (int rc = uv_loop_init(&w->loop_); rc != 0) return fail(UvStatus(rc, "uv_loop_init"));
  w->loop_initialized_ = true;
  // Evaluated in order; on a failure the loop and the handles made so far
  // are leaked rather than closed half-made (the daemon does not start).
  const std::pair<int, const char*> inits[] = {
      {uv_timer_init(&w->loop_, &w->tick_), "uv_timer_init"},
      {uv_async_init(&w->loop_, &w->stop_async_, &Worker::OnStop), "uv_async_init"},
      {uv_async_init(&w->loop_, &w->task_async_, &Worker::OnTasks), "uv_async_init"},
      {uv_timer_init(&w->loop_, &w->drain_timer_), "uv_timer_init"},
      {uv_timer_init(&w->loop_, &w->heartbeat_), "uv_timer_init"},
  };
  for (const auto& [rc, what] : inits) {
    if (rc != 0) {
      w->loop_initialized_ = false;
      return fail(UvStatus(rc, what));
    }
  }
  w->tick_.data = w.get();
  w->timers_.set_wakeup([p = w.get()](absl::Time deadline) {
    p->AssertOnLoopThread();  // timers are added on the loop (or before Start)
    p->ArmTick(deadline);
  });
  w->stop_async_.data = w.get();
  w->task_async_.data = w.get();
  w->drain_timer_.data = w.get();
  w->heartbeat_.data = w.get();
  w->handles_initialized_ = true;

  auto g = w->BuildGeneration(options);
  if (!g.ok()) return fail(g.status());
  w->current_ = std::move(*g);
  resolver::Resolver* r = w->current_->resolver.get();
  // From here the listeners own the descriptors.
  for (int fd : udp_fds) {
    w->udp_.push_back(std::make_unique<UdpListener>(&w->loop_, fd, r, &w->server_counters_,
                                                    options.resolver.max_udp_size));
  }
  for (int fd : tcp_fds) {
    w->tcp_.push_back(std::make_unique<TcpListener>(&w->loop_, fd, r, &w->server_counters_, options.tcp, w->clock_, &w->timers_,
                                                    tcp_budget));
  }
  udp_fds.clear();
  tcp_fds.clear();
  w->query_log_.set_sample(options.query_log_sample);
  for (auto& u : w->udp_) u->set_query_log(&w->query_log_);
  for (auto& t : w->tcp_) t->set_query_log(&w->query_log_);
  for (auto& u : w->udp_) {
    if (auto st = u->Start(); !st.ok()) return st;
  }
  for (auto& t : w->tcp_) {
    if (auto st = t->Start(); !st.ok()) return st;
  }
  return w;
}

Worker::~Worker() {
  if (thread_.joinable()) {
    RequestStop();
    Join();
  }
  loop_role_.Bind();  // the worker's thread has ended (or never started)
  loop_role_.AssertHeld();
  if (loop_initialized_ && !final_closed_) {
    // Never started (or Create failed half-way): close handles and drain.
    FinalClose();
    uv_run(&loop_, UV_RUN_DEFAULT);
  }
  // The loop has run every close callback: the generations may go.
  retired_.clear();
  current_.reset();
  if (loop_initialized_) uv_loop_close(&loop_);
}

void Worker::Start() {
  heartbeat_ns_.store(MonotonicNanos(), std::memory_order_relaxed);
  uv_timer_start(&heartbeat_, &Worker::OnHeartbeat, kHeartbeatMs, kHeartbeatMs);
  thread_ = std::thread([this] { Run(); });
}

void Worker::Run() {
  loop_role_.Bind();
  AssertOnLoopThread();
  // Named for top -H and perf: "nodedns-udp0", "nodedns-tcp1" (the index is
  // the one "worker N" log lines and /healthz use).
  bool tcp_only = udp_.empty() && !tcp_.empty();
  std::string name = std::string(tcp_only ? "nodedns-tcp" : "nodedns-udp") + std::to_string(index_);
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
  if (tcp_only) {
    // The TCP loops yield the CPU to the UDP ones when both want it (nice +5
    // of this thread only): on a node short of cores, TCP clients (a
    // fallback, and the abusers' way in) wait rather than every UDP query.
    pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
    errno = 0;
    int nice_now = getpriority(PRIO_PROCESS, static_cast<id_t>(tid));
    if (errno == 0 && setpriority(PRIO_PROCESS, static_cast<id_t>(tid), std::min(19, nice_now + kTcpNice)) != 0) {
      spdlog::warn("worker {}: could not lower the TCP loop's priority: {}", index_, std::strerror(errno));
    }
  }
  uv_run(&loop_, UV_RUN_DEFAULT);
  spdlog::debug("worker {} stopped", index_);
}

void Worker::RequestStop() { uv_async_send(&stop_async_); }

void Worker::AppendMetrics(MetricSet* out) const {
  out->AddCounters("", "", server_counters_);
  out->AddCounters("", "", resolver_counters_);
  out->AddCounters("", "", upstream_counters_);
  out->AddHistogram("latency_seconds", "query_duration_seconds", "Time from receiving a query to sending its answer",
                    server_counters_.latency);
  out->AddHistogram("stale_age_seconds", "stale_age_seconds", "How long past expiry the stale answers served were",
                    resolver_counters_.stale_age);
}

void Worker::Post(std::function<void()> fn) {
  // Under the lock, so the handle cannot be closed between the check and
  // the send (uv_async_send is thread-safe and does not block).
  MutexLock lock(&tasks_mu_);
  if (tasks_closed_) return;
  tasks_.push_back(std::move(fn));
  uv_async_send(&task_async_);
}

void Worker::OnTasks(uv_async_t* handle) {
  auto* self = static_cast<Worker*>(handle->data);
  std::vector<std::function<void()>> tasks;
  {
    MutexLock lock(&self->tasks_mu_);
    tasks.swap(self->tasks_);
  }
  for (auto& t : tasks) t();
}

void Worker::OnHeartbeat(uv_timer_t* timer) {
  auto* self = static_cast<Worker*>(timer->data);
  self->loop_role_.AssertHeld();
  self->heartbeat_ns_.store(MonotonicNanos(), std::memory_order_relaxed);
  self->ReapRetired(false);
}

absl::Status Worker::Reconfigure(const ServerOptions& options) {
  if (final_closed_) return absl::FailedPreconditionError("worker is stopping");
  auto g = BuildGeneration(options);
  if (!g.ok()) return g.status();
  // What the upstreams have shown survives the reload: a zone that is down
  // stays down (and probed), latency and limits carry over.
  for (auto& pool : (*g)->pools) {
    for (const auto& old : current_->pools) {
      if (old->zone() == pool->zone()) pool->AdoptState(*old);
    }
  }
  for (auto& u : udp_) u->set_resolver((*g)->resolver.get());
  for (auto& t : tcp_) t->set_resolver((*g)->resolver.get());
  query_log_.set_sample(options.query_log_sample);
  current_->pins.reset();  // the new generation's refresher takes over
  current_->drain_deadline = clock_->Now() + current_->longest_query + absl::Milliseconds(500);
  retired_.push_back(std::move(current_));
  current_ = std::move(*g);
  return absl::OkStatus();
}

void Worker::ReapRetired(bool force) {
  // Generations shut down on an earlier pass have had their close callbacks.
  std::erase_if(retired_, [](const std::unique_ptr<Generation>& g) { return g->shut_down; });
  absl::Time now = clock_->Now();
  for (auto& g : retired_) {
    if (force || g->resolver->pending() == 0 || now >= g->drain_deadline) g->Shutdown();
  }
}

std::vector<WorkerUpstream> Worker::Upstreams() const {
  std::vector<WorkerUpstream> out;
  for (const auto& pool : current_->pools) {
    for (const upstream::ServerStatus& s : pool->servers()) {
      out.push_back({pool->zone(), s, pool->p99_latency(), pool->zone_status()});
    }
  }
  return out;
}

size_t Worker::pending() const {
  size_t n = current_->resolver->pending();
  for (const auto& g : retired_) n += g->resolver->pending();
  return n;
}

void Worker::ArmTick(absl::Time deadline) {
  if (final_closed_) return;
  absl::Duration delay = deadline - clock_->Now();
  uint64_t ms = delay <= absl::ZeroDuration() ? 0 : static_cast<uint64_t>(absl::ToInt64Milliseconds(absl::Ceil(delay, absl::Milliseconds(1))));
  uv_timer_start(&tick_, &Worker::OnTick, ms, 0);
}

void Worker::OnTick(uv_timer_t* timer) {
  auto* self = static_cast<Worker*>(timer->data);
  self->loop_role_.AssertHeld();
  self->timers_.RunDue(self->clock_->Now());
  if (auto next = self->timers_.NextDeadline()) self->ArmTick(*next);
}

void Worker::Join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::OnStop(uv_async_t* handle) {
  auto* self = static_cast<Worker*>(handle->data);
  self->loop_role_.AssertHeld();
  if (self->final_closed_ || uv_is_active(reinterpret_cast<uv_handle_t*>(&self->drain_timer_))) return;
  for (auto& u : self->udp_) {
    u->Drain();
    u->StopReading();
  }
  for (auto& t : self->tcp_) t->StopAccepting();
  self->min_close_ = SystemSteadyClock::Get()->Now() + absl::Milliseconds(50);
  absl::Duration longest = self->current_->longest_query;
  for (const auto& g : self->retired_) longest = std::max(longest, g->longest_query);
  self->drain_deadline_ = SystemSteadyClock::Get()->Now() + std::min(longest + absl::Milliseconds(500), absl::Seconds(30));
  uv_timer_start(&self->drain_timer_, &Worker::OnDrainTick, 0, 10);
}

void Worker::OnDrainTick(uv_timer_t* timer) {
  auto* self = static_cast<Worker*>(timer->data);
  self->loop_role_.AssertHeld();
  // Datagrams that were on their way when reading stopped (or when a
  // successor's steering took effect) are still answered.
  for (auto& u : self->udp_) u->Drain();
  absl::Time now = SystemSteadyClock::Get()->Now();
  if ((self->pending() == 0 && now >= self->min_close_) || now >= self->drain_deadline_) self->FinalClose();
}

void Worker::FinalClose() {
  if (final_closed_) return;
  final_closed_ = true;
  // Upstreams first: whatever is still pending is answered SERVFAIL while the
  // listeners can still send.
  if (current_) current_->Shutdown();
  for (auto& g : retired_) g->Shutdown();
  for (auto& t : tcp_) t->CloseAll();
  for (auto& u : udp_) u->Close();
  if (loop_initialized_) {
    uv_timer_stop(&tick_);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
  }
  if (handles_initialized_) {
    {
      MutexLock lock(&tasks_mu_);
      tasks_closed_ = true;
      tasks_.clear();
    }
    uv_timer_stop(&drain_timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&drain_timer_), nullptr);
    uv_timer_stop(&heartbeat_);
    uv_close(reinterpret_cast<uv_handle_t*>(&heartbeat_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&stop_async_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&task_async_), nullptr);
  }
}

}  // namespace nodedns::server
