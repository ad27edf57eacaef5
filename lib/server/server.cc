#include "lib/server/server.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "lib/server/sockets.h"

namespace nodedns::server {

absl::StatusOr<std::unique_ptr<Server>> Server::Create(const config::Config& config, const Clock* clock) {
  std::unique_ptr<Server> s(new Server());
  cache::CacheOptions co = config.cache;
  auto cache = cache::Cache::Create(co);
  if (!cache.ok()) return cache.status();
  s->cache_ = std::move(*cache);
  auto bound = BindListeners(config.listen, config.workers);
  if (!bound.ok()) return bound.status();
  for (const BoundAddress& b : *bound) s->bound_.push_back(b.address);
  for (int i = 0; i < config.workers; ++i) {
    std::vector<int> udp, tcp;
    for (BoundAddress& b : *bound) {
      udp.push_back(b.udp_fds[i]);
      tcp.push_back(b.tcp_fds[i]);
      b.udp_fds[i] = b.tcp_fds[i] = -1;
    }
    auto w = Worker::Create(i, config, s->cache_.get(), clock, std::move(udp), std::move(tcp));
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

Server::~Server() { Stop(); }

void Server::Start() {
  for (auto& w : workers_) w->Start();
}

void Server::Stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& w : workers_) w->RequestStop();
  for (auto& w : workers_) w->Join();
}

CounterValues Server::Counters() const {
  CounterValues v;
  for (const auto& w : workers_) v.Add(w->counters());
  return v;
}

}  // namespace nodedns::server
