#include "lib/server/server.h"

#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <random>

#include "lib/server/pins.h"
#include "lib/server/sockets.h"

#ifndef SO_DETACH_REUSEPORT_BPF
#define SO_DETACH_REUSEPORT_BPF 68  // Linux 5.3; glibc 2.36 headers may lack it
#endif

namespace nodedns::server {

absl::StatusOr<std::unique_ptr<Server>> Server::Create(const ServerOptions& options, const SteadyClock* clock) {
  std::unique_ptr<Server> s(new Server());
  s->clock_ = clock;
  {
    MutexLock lock(&s->options_mu_);
    s->options_ = options;
  }
  cache::CacheOptions co = options.cache;
  auto cache = cache::Cache::Create(co);
  if (!cache.ok()) return cache.status();
  s->cache_ = std::move(*cache);
  // Pinned before anything is inserted (the snapshot loads after this).
  {
    MutexLock lock(&s->options_mu_);
    s->pins_ = PinnedKeysFor(options);
    s->cache_->SetPinned(CacheKeysOf(s->pins_));
  }
  s->tcp_budget_ = std::make_unique<TcpBudget>(options.tcp.memory_budget);
  auto bound = BindListeners(options.listen, options.workers, options.tcp_workers);
  if (!bound.ok()) return bound.status();
  for (const BoundAddress& b : *bound) {
    s->bound_.push_back(b.address);
    s->groups_.push_back({fcntl(b.udp_fds[0], F_DUPFD_CLOEXEC, 0), options.workers});
    s->groups_.push_back({fcntl(b.tcp_fds[0], F_DUPFD_CLOEXEC, 0), options.tcp_workers});
  }
  // Workers 0..workers-1 serve UDP, the next tcp_workers serve TCP: a TCP
  // client, however it behaves, never holds up a UDP worker's loop.
  for (int i = 0; i < options.workers + options.tcp_workers; ++i) {
    std::vector<int> udp, tcp;
    for (BoundAddress& b : *bound) {
      int& fd = i < options.workers ? b.udp_fds[i] : b.tcp_fds[i - options.workers];
      (i < options.workers ? udp : tcp).push_back(fd);
      fd = -1;
    }
    auto w = Worker::Create(i, options, s->cache_.get(), clock, s->tcp_budget_.get(), &s->loop_probes_, std::move(udp),
                            std::move(tcp));
    if (!w.ok()) {
      for (BoundAddress& b : *bound) {
        for (int& fd : b.udp_fds) if (fd >= 0) close(fd);
        for (int& fd : b.tcp_fds) if (fd >= 0) close(fd);
      }
      return w.status();
    }
    s->workers_.push_back(std::move(*w));
  }
  return s;
}

Server::~Server() {
  Stop();
  for (const Group& g : groups_) {
    if (g.fd >= 0) close(g.fd);
  }
}

absl::Status Server::SteerToSuccessor() {
  for (const Group& g : groups_) {
    // "ret #N": every packet (and SYN) to socket N of the group, the
    // successor's first; an index beyond the group falls back to the hash.
    sock_filter code[] = {{BPF_RET | BPF_K, 0, 0, static_cast<uint32_t>(g.sockets)}};
    sock_fprog prog{1, code};
    if (setsockopt(g.fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) != 0) {
      return ErrnoStatus(errno, "SO_ATTACH_REUSEPORT_CBPF");
    }
  }
  return absl::OkStatus();
}

absl::Status Server::DetachSteering() {
  int unused = 0;
  for (const Group& g : groups_) {
    int fd = g.fd;
    // ENOENT: no program attached (the predecessor stopped without steering).
    if (setsockopt(fd, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &unused, sizeof(unused)) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, "SO_DETACH_REUSEPORT_BPF");
    }
  }
  return absl::OkStatus();
}

namespace {

bool SameMirroring(const ServerOptions& a, const ServerOptions& b) {
  if (!(a.mirror == b.mirror) || !(a.resolver.image == b.resolver.image)) return false;
  auto mirrored = [](const ServerOptions& o) {
    std::vector<ZoneOptions> out;
    for (const ZoneOptions& z : o.zones) {
      if (z.mirror) out.push_back(z);
    }
    return out;
  };
  return mirrored(a) == mirrored(b);
}

}  // namespace

std::unique_ptr<mirror::Mirror> Server::MakeMirror(const ServerOptions& o,
                                                   const std::vector<mirror::MirrorStatus>& previous) {
  std::vector<mirror::MirroredZone> zones;
  for (const ZoneOptions& z : o.zones) {
    if (z.mirror) zones.push_back({z.name, z.servers, z.max_stale});
  }
  if (zones.empty()) return nullptr;
  auto m = std::make_unique<mirror::Mirror>(std::move(zones), o.mirror, o.resolver.image, cache_.get(), clock_,
                                            std::random_device{}(),
                                            [this](const std::string& zone) { return ZoneHealthy(zone); });
  m->Adopt(previous);
  m->Start();
  return m;
}

void Server::Start() {
  for (auto& w : workers_) w->Start();
  // After the snapshot has loaded (the daemon loads it before Start).
  MutexLock lock(&options_mu_);
  mirror_ = MakeMirror(options_, {});
}

bool Server::ZoneHealthy(const std::string& zone) {
  // Every worker's view, as `dnsctl stats` shows it; no answer in time
  // counts as not healthy.
  auto ups = Upstreams(absl::Seconds(1));
  if (!ups.ok()) return false;
  for (const UpstreamSummary& u : *ups) {
    if (u.zone == zone && u.zone_health != "healthy") return false;
  }
  return true;
}

std::vector<mirror::MirrorStatus> Server::Mirrors() const {
  MutexLock lock(&options_mu_);
  return mirror_ ? mirror_->Status() : std::vector<mirror::MirrorStatus>{};
}

void Server::Stop() {
  if (stopped_) return;
  stopped_ = true;
  // Joined outside the lock (/metrics and dnsctl wait on it): a transfer in
  // progress gives up within 100 ms, a check waits at most for the workers'
  // answer on the zone's health.
  std::unique_ptr<mirror::Mirror> mirror;
  {
    MutexLock lock(&options_mu_);
    mirror = std::move(mirror_);
  }
  mirror.reset();
  for (auto& w : workers_) w->RequestStop();
  for (auto& w : workers_) w->Join();
}

void Server::AppendMetrics(MetricSet* out) const {
  for (const auto& w : workers_) w->AppendMetrics(out);
  MutexLock lock(&options_mu_);
  AppendPinMetrics(pins_, *cache_, clock_->Now(), out);
}

ServerOptions Server::options() const {
  MutexLock lock(&options_mu_);
  return options_;
}

template <typename T>
std::optional<std::vector<T>> Server::CollectFromWorkers(std::function<T(Worker&)> fn, absl::Duration timeout) {
  struct State {
    Mutex mu;
    std::vector<T> results ABSL_GUARDED_BY(mu);
    size_t remaining ABSL_GUARDED_BY(mu);
  };
  auto state = std::make_shared<State>();
  {
    MutexLock lock(&state->mu);
    state->results.resize(workers_.size());
    state->remaining = workers_.size();
  }
  for (size_t i = 0; i < workers_.size(); ++i) {
    Worker* w = workers_[i].get();
    w->Post([state, fn, w, i] {
      T result = fn(*w);
      MutexLock lock(&state->mu);
      state->results[i] = std::move(result);
      --state->remaining;
    });
  }
  MutexLock lock(&state->mu);
  auto done = [&state]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) { return state->remaining == 0; };
  if (!state->mu.AwaitWithTimeout(done, timeout)) return std::nullopt;
  return std::move(state->results);
}

absl::StatusOr<std::vector<UpstreamSummary>> Server::Upstreams(absl::Duration timeout) {
  auto per_worker =
      CollectFromWorkers<std::vector<WorkerUpstream>>(
      [](Worker& w) {
        w.AssertOnLoopThread();  // a posted task
        return w.Upstreams();
      },
      timeout);
  if (!per_worker) return absl::DeadlineExceededError("a worker loop did not answer in time");
  std::vector<UpstreamSummary> out;
  std::map<std::pair<std::string, std::string>, size_t> index;
  std::vector<int> srtt_samples;
  for (const auto& ups : *per_worker) {
    for (const WorkerUpstream& u : ups) {
      auto [it, inserted] = index.try_emplace({u.zone, u.status.name}, out.size());
      if (inserted) {
        UpstreamSummary fresh;
        fresh.zone = u.zone;
        fresh.server = u.status.name;
        fresh.state_since = u.status.state_since;
        out.push_back(fresh);
        srtt_samples.push_back(0);
      }
      UpstreamSummary& s = out[it->second];
      bool open = u.status.state == upstream::CircuitBreaker::State::kOpen;
      if (open) {
        if (!s.open) s.state_since = u.status.state_since;
        s.open = true;
        ++s.workers_open;
      }
      if (open == s.open) s.state_since = std::min(s.state_since, u.status.state_since);
      s.transitions += u.status.transitions;
      s.consecutive_failures = std::max(s.consecutive_failures, u.status.consecutive_failures);
      s.queries += u.status.queries;
      s.failures += u.status.failures;
      if (u.status.srtt > absl::ZeroDuration()) {
        s.srtt += u.status.srtt;
        ++srtt_samples[it->second];
      }
      s.zone_p99 = std::max(s.zone_p99, u.zone_p99);
      // Each server's row carries its zone's figures on that worker: summed
      // over workers, they are the zone's.
      static constexpr const char* kHealth[] = {"healthy", "degraded", "down"};
      int worst = std::max<int>(static_cast<int>(u.zone_status.health),
                                s.zone_health == "down" ? 2 : s.zone_health == "degraded" ? 1 : 0);
      s.zone_health = kHealth[worst];
      s.zone_limit += u.zone_status.limit;
      s.zone_inflight += u.zone_status.inflight;
      s.zone_queued += u.zone_status.queued;
    }
  }
  for (size_t i = 0; i < out.size(); ++i) {
    if (srtt_samples[i] > 1) out[i].srtt /= srtt_samples[i];
  }
  return out;
}

bool Server::LoopsResponsive(absl::Duration max_silence, std::string* why) const {
  int64_t now = MonotonicNanos();
  bool ok = true;
  for (size_t i = 0; i < workers_.size(); ++i) {
    int64_t silent_ns = now - workers_[i]->last_heartbeat_ns();
    if (silent_ns > absl::ToInt64Nanoseconds(max_silence)) {
      ok = false;
      if (why) *why += "worker " + std::to_string(i) + " silent for " + std::to_string(silent_ns / 1'000'000) + " ms; ";
    }
  }
  return ok;
}

absl::Status Server::Reload(const ServerOptions& next) {
  auto shared_config = std::make_shared<const ServerOptions>(next);
  auto errors = CollectFromWorkers<absl::Status>(
      [shared_config](Worker& w) {
        w.AssertOnLoopThread();  // a posted task
        return w.Reconfigure(*shared_config);
      },
      absl::Seconds(5));
  if (!errors) return absl::DeadlineExceededError("reload: a worker loop did not answer within 5 s");
  for (const absl::Status& st : *errors) {
    if (!st.ok()) return absl::Status(st.code(), "reload: " + std::string(st.message()));
  }
  std::unique_ptr<mirror::Mirror> old_mirror;
  {
    MutexLock lock(&options_mu_);
    if (!SameMirroring(options_, next)) old_mirror = std::move(mirror_);
  }
  if (old_mirror) {
    // Stopped outside the lock, then its state carried over to the new one.
    old_mirror->Stop();
    auto mirror = stopped_ ? nullptr : MakeMirror(next, old_mirror->Status());
    MutexLock lock(&options_mu_);
    mirror_ = std::move(mirror);
  }
  MutexLock lock(&options_mu_);
  options_ = next;
  pins_ = PinnedKeysFor(next);
  cache_->SetPinned(CacheKeysOf(pins_));
  return absl::OkStatus();
}

}  // namespace nodedns::server
