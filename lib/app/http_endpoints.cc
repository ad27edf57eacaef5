#include "lib/app/http_endpoints.h"

#include "lib/server/sockets.h"

namespace nodedns::app {

absl::Status HttpEndpoints::Start(const std::optional<SocketAddress>& metrics,
                                  const std::optional<SocketAddress>& health) {
  if (metrics) {
    if (auto st = Listen(*metrics, "metrics", {.metrics = true, .probes = !health}); !st.ok()) {
      return absl::Status(st.code(), "metrics endpoint: " + std::string(st.message()) +
                                         " (set --metrics-listen ADDR:PORT, or \"\" to turn it off)");
    }
  }
  if (health) {
    if (auto st = Listen(*health, "health", {.metrics = false, .probes = true}); !st.ok()) {
      return absl::Status(st.code(), "health endpoint: " + std::string(st.message()) +
                                         " (set --health-listen ADDR:PORT, or \"\" to serve it with /metrics)");
    }
  }
  return absl::OkStatus();
}

absl::Status HttpEndpoints::Listen(const SocketAddress& address, const std::string& what, control::HttpPaths paths) {
  SocketAddress bound;
  auto fd = server::BindTcpListener(address, &bound);
  if (!fd.ok()) return fd.status();
  auto s = std::make_unique<control::StreamServer>(
      loop_, control::HttpEndpointOptions(),
      [this, paths](std::string_view req, const control::PeerCredentials&, control::StreamServer::Respond r) {
        r(control::HandleHttpRequest(req, *target_, paths));
      });
  if (auto st = s->Start(*fd, /*tcp=*/true); !st.ok()) return st;
  servers_.push_back(std::move(s));
  bound_.push_back({what, bound});
  return absl::OkStatus();
}

void HttpEndpoints::Close() {
  for (auto& s : servers_) s->Close();
}

std::vector<SocketAddress> HttpEndpoints::addresses() const {
  std::vector<SocketAddress> out;
  for (const Bound& b : bound_) out.push_back(b.address);
  return out;
}

std::vector<SocketAddress> HttpEndpoints::Configured(const std::optional<SocketAddress>& metrics,
                                                     const std::optional<SocketAddress>& health) {
  std::vector<SocketAddress> out;
  for (const auto& a : {metrics, health}) {
    if (a) out.push_back(*a);
  }
  return out;
}

control::ConnectionStats HttpEndpoints::stats() const {
  control::ConnectionStats sum;
  for (const auto& s : servers_) sum += s->stats();
  return sum;
}

}  // namespace nodedns::app
