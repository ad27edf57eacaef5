#include "lib/server/worker.h"

#include <unistd.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "lib/dns/name.h"
#include "lib/server/sockets.h"

namespace nodedns::server {

Worker::Worker(int index, const config::Config& config) : index_(index), config_(config) {}

absl::StatusOr<std::unique_ptr<Worker>> Worker::Create(int index, const config::Config& config, cache::Cache* cache,
                                                       const Clock* clock, std::vector<int> udp_fds,
                                                       std::vector<int> tcp_fds) {
  std::unique_ptr<Worker> w(new Worker(index, config));
  auto fail = [&](absl::Status st) {
    for (int fd : udp_fds) close(fd);
    for (int fd : tcp_fds) close(fd);
    return st;
  };
  if (int rc = uv_loop_init(&w->loop_); rc != 0) return fail(UvStatus(rc, "uv_loop_init"));
  w->loop_initialized_ = true;
  for (const config::ZoneConfig& z : config.zones) {
    upstream::UpstreamOptions o;
    o.name = z.name;
    o.servers = z.servers;
    o.timeout = config.upstream_timeout;
    o.attempts = config.upstream_attempts;
    auto set = upstream::UpstreamSet::Create(&w->loop_, o);
    if (!set.ok()) return fail(set.status());
    auto wire = dns::NameFromText(z.name);
    if (!wire.ok()) return fail(wire.status());
    w->router_.AddZone(*wire, set->get());
    w->upstreams_.push_back(std::move(*set));
  }
  resolver::ResolverOptions ro;
  ro.max_udp_size = static_cast<uint16_t>(config.max_udp_size);
  ro.ttl = config.ttl;
  ro.max_pending = static_cast<size_t>(config.max_pending);
  ro.max_waiters = static_cast<size_t>(config.max_waiters);
  w->resolver_ = std::make_unique<resolver::Resolver>(ro, cache, &w->router_, clock, &w->counters_);
  TcpOptions to;
  to.max_connections = config.max_tcp_connections;
  to.idle_timeout = config.tcp_idle_timeout;
  to.max_pipeline = config.max_tcp_pipeline;
  // From here the listeners own the descriptors.
  for (int fd : udp_fds) {
    w->udp_.push_back(std::make_unique<UdpListener>(&w->loop_, fd, w->resolver_.get(), &w->counters_, ro.max_udp_size));
  }
  for (int fd : tcp_fds) {
    w->tcp_.push_back(std::make_unique<TcpListener>(&w->loop_, fd, w->resolver_.get(), &w->counters_, to));
  }
  udp_fds.clear();
  tcp_fds.clear();
  for (auto& u : w->udp_) {
    if (auto st = u->Start(); !st.ok()) return st;
  }
  for (auto& t : w->tcp_) {
    if (auto st = t->Start(); !st.ok()) return st;
  }
  uv_async_init(&w->loop_, &w->stop_async_, &Worker::OnStop);
  w->stop_async_.data = w.get();
  uv_timer_init(&w->loop_, &w->drain_timer_);
  w->drain_timer_.data = w.get();
  w->async_initialized_ = true;
  return w;
}

Worker::~Worker() {
  if (thread_.joinable()) {
    RequestStop();
    Join();
  }
  if (loop_initialized_ && !final_closed_) {
    // Never started (or Create failed half-way): close handles and drain.
    FinalClose();
    uv_run(&loop_, UV_RUN_DEFAULT);
  }
  if (loop_initialized_) uv_loop_close(&loop_);
}

void Worker::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Worker::Run() {
  uv_run(&loop_, UV_RUN_DEFAULT);
  spdlog::debug("worker {} stopped", index_);
}

void Worker::RequestStop() { uv_async_send(&stop_async_); }

void Worker::Join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::OnStop(uv_async_t* handle) {
  auto* self = static_cast<Worker*>(handle->data);
  if (self->final_closed_ || uv_is_active(reinterpret_cast<uv_handle_t*>(&self->drain_timer_))) return;
  for (auto& u : self->udp_) u->StopReading();
  for (auto& t : self->tcp_) t->StopAccepting();
  // The longest an upstream query can take: c-ares doubles the timeout each
  // round of attempts.
  absl::Duration longest = self->config_.upstream_timeout * ((1 << self->config_.upstream_attempts) - 1);
  self->drain_deadline_ = absl::Now() + std::min(longest + absl::Milliseconds(500), absl::Seconds(30));
  uv_timer_start(&self->drain_timer_, &Worker::OnDrainTick, 0, 10);
}

void Worker::OnDrainTick(uv_timer_t* timer) {
  auto* self = static_cast<Worker*>(timer->data);
  if (self->resolver_->pending() == 0 || absl::Now() >= self->drain_deadline_) self->FinalClose();
}

void Worker::FinalClose() {
  if (final_closed_) return;
  final_closed_ = true;
  // Upstreams first: whatever is still pending is answered SERVFAIL while the
  // listeners can still send.
  for (auto& u : upstreams_) u->Shutdown();
  for (auto& t : tcp_) t->CloseAll();
  for (auto& u : udp_) u->Close();
  if (async_initialized_) {
    uv_timer_stop(&drain_timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&drain_timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&stop_async_), nullptr);
  }
}

}  // namespace nodedns::server
