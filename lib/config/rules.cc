// The configuration's rules beyond one field (declared in config.h):
// resolv.conf upstreams, cross-field validation, and what a reload cannot
// apply without a restart.

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "lib/config/config.h"
#include "lib/config/text_check.h"

namespace nodedns::config {

absl::StatusOr<std::vector<SocketAddress>> ReadResolvConf(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(path + ": cannot open: " + std::strerror(errno));
  std::vector<SocketAddress> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string word, addr;
    if (!(ls >> word) || word != "nameserver" || !(ls >> addr)) continue;
    // Link-local IPv6 scope ids ("fe80::1%eth0") are not supported by c-ares
    // server lists in this version: skip them.
    if (addr.find('%') != std::string::npos) continue;
    auto a = SocketAddress::Parse(addr, 53);
    if (a.ok()) out.push_back(*a);
  }
  return out;
}

absl::Status ResolveUpstreams(Config* c, const std::string& resolv_conf_path) {
  for (ZoneConfig& z : c->zones) {
    if (!z.use_resolv_conf) continue;
    auto servers = ReadResolvConf(resolv_conf_path);
    if (!servers.ok()) return servers.status();
    for (const SocketAddress& s : *servers) {
      bool loop = false;
      for (const SocketAddress& l : c->listen) {
        if (l.HostString() == s.HostString() && (l.port() == s.port())) loop = true;
      }
      if (!loop) z.servers.push_back(s);
    }
    z.use_resolv_conf = false;
    if (z.servers.empty()) {
      return absl::FailedPreconditionError("zone '" + z.name + "': " + resolv_conf_path +
                                           " lists no usable nameserver (use --upstream ADDR:PORT)");
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> KeepRestartOnly(const Config& running, Config* next) {
  std::vector<std::string> notes;
  auto keep = [&](const char* what, auto... fields) {
    if (((next->*fields == running.*fields) && ...)) return;
    notes.push_back(std::string(what) + " changed: needs a restart; keeping the running value");
    ((next->*fields = running.*fields), ...);
  };
  keep("server.listen", &Config::listen);
  keep("server.workers/tcp_workers", &Config::workers, &Config::tcp_workers);
  if (next->resolver.max_udp_size != running.resolver.max_udp_size) {  // the listeners' buffers
    notes.push_back("server.max_udp_size changed: needs a restart; keeping the running value");
    next->resolver.max_udp_size = running.resolver.max_udp_size;
  }
  keep("server.tcp_idle_timeout_ms/max_tcp_connections/max_tcp_pipeline/tcp_frame_timeout_ms/max_tcp_write_queue/"
       "tcp_memory_budget",
       &Config::tcp);
  keep("cache.max_entries/max_bytes/shards", &Config::cache);
  keep("control.*", &Config::control_socket, &Config::control_socket_mode, &Config::control_socket_owner,
       &Config::control_socket_group);
  keep("metrics.listen", &Config::metrics_listen);
  keep("health.listen", &Config::health_listen);
  keep("snapshot.path", &Config::snapshot_path);
  return notes;
}

bool IsLogLevel(std::string_view level) {
  for (std::string_view l : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    if (level == l) return true;
  }
  return false;
}

absl::Status Validate(const Config& c) {
  if (c.listen.empty()) return absl::InvalidArgumentError("no listen address");
  if (c.zones.empty()) return absl::InvalidArgumentError("no [[zone]]: nothing to forward to");
  if (c.zones.size() > kMaxZones) {
    return absl::InvalidArgumentError("more than " + std::to_string(kMaxZones) + " zones");
  }
  absl::flat_hash_set<std::string_view> names;
  for (const ZoneConfig& z : c.zones) {
    if (z.servers.empty() && !z.use_resolv_conf) {
      return absl::InvalidArgumentError("zone '" + z.name + "' has no servers");
    }
    if (!names.insert(z.name).second) return absl::InvalidArgumentError("zone '" + z.name + "' is configured twice");
  }
  for (const ZoneConfig& z : c.zones) {
    if (z.mirror && z.name == ".") {
      return absl::InvalidArgumentError("zone '.': mirror = true needs a zone to transfer, not the root");
    }
  }
  // Pinned names: under their zone, each once, kMaxPinnedNames in all.
  size_t pins = 0;
  absl::flat_hash_set<std::string_view> pinned;
  for (const ZoneConfig& z : c.zones) {
    for (const std::string& p : z.pin) {
      bool under = z.name == "." || p == z.name ||
                   (p.size() > z.name.size() && p.compare(p.size() - z.name.size(), z.name.size(), z.name) == 0 &&
                    p[p.size() - z.name.size() - 1] == '.');
      if (!under) return absl::InvalidArgumentError("zone '" + z.name + "': pinned name '" + p + "' is not under it");
      if (!pinned.insert(p).second) return absl::InvalidArgumentError("pinned name '" + p + "' is listed twice");
      if (++pins > kMaxPinnedNames) {
        return absl::InvalidArgumentError("more than " + std::to_string(kMaxPinnedNames) + " pinned names");
      }
    }
  }
  if (c.cache.max_entries < c.cache.shards) {
    return absl::InvalidArgumentError("cache.max_entries must be at least cache.shards");
  }
  if (c.cache.max_bytes < c.cache.shards * 4096) {
    return absl::InvalidArgumentError("cache.max_bytes must be at least 4096 * cache.shards");
  }
  if (c.resolver.image.min_ttl > c.resolver.image.max_ttl) return absl::InvalidArgumentError("cache.min_ttl exceeds cache.max_ttl");
  const upstream::BreakerOptions& b = c.upstream.breaker;
  const upstream::LimiterOptions& l = c.upstream.limiter;
  if (b.probe_min > b.probe_max) return absl::InvalidArgumentError("upstream.probe_min_ms exceeds upstream.probe_max_ms");
  if (l.min_limit > l.max_limit) return absl::InvalidArgumentError("upstream.limit_min exceeds upstream.max_inflight");
  if (l.initial_limit < l.min_limit || l.initial_limit > l.max_limit) {
    return absl::InvalidArgumentError("upstream.limit_initial must lie between upstream.limit_min and upstream.max_inflight");
  }
  for (const ZoneConfig& z : c.zones) {
    if (z.servers.size() > 32) return absl::InvalidArgumentError("zone '" + z.name + "' has more than 32 servers");
  }
  if (c.health_listen && c.metrics_listen && *c.health_listen == *c.metrics_listen && c.health_listen->port() != 0) {
    return absl::InvalidArgumentError("health.listen is metrics.listen (" + c.metrics_listen->ToString() +
                                      "): leave health.listen \"\" to serve the probes with /metrics");
  }
  return absl::OkStatus();
}

}  // namespace nodedns::config
