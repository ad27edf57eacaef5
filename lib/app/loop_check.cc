#include "lib/app/loop_check.h"

#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>

#include "absl/strings/str_format.h"
#include "lib/dns/constants.h"
#include "lib/dns/name.h"
#include "lib/dns/writers.h"

namespace nodedns::app {
namespace {

struct Probe {
  const server::ZoneOptions* zone;
  SocketAddress server;
  std::string name;  // wire format
  int fd = -1;
  bool answered = false;
};

uint64_t Random64() {
  uint64_t v = 0;
  if (getrandom(&v, sizeof(v), 0) != sizeof(v)) {
    v = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }
  return v;
}

bool Unchanged(const server::ZoneOptions& z, const std::vector<server::ZoneOptions>* running) {
  if (running == nullptr) return false;
  for (const server::ZoneOptions& r : *running) {
    if (r.name == z.name) return r.servers == z.servers;
  }
  return false;
}

// Sends the probe over a connected UDP socket of its own; false when it
// cannot be sent (then it proves nothing).
bool Send(Probe& p) {
  uint8_t query[dns::kMaxQuerySize];
  size_t n = dns::WriteQuery(p.name, dns::kTypeHINFO, dns::kClassIN, false, false, query);
  uint64_t id = Random64();
  query[0] = static_cast<uint8_t>(id >> 8);
  query[1] = static_cast<uint8_t>(id);
  p.fd = socket(p.server.family(), SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (p.fd < 0) return false;
  if (connect(p.fd, p.server.sockaddr_ptr(), p.server.length()) != 0 || send(p.fd, query, n, 0) < 0) {
    close(p.fd);
    p.fd = -1;
    return false;
  }
  return true;
}

}  // namespace

absl::Status CheckForwardingLoops(const std::vector<server::ZoneOptions>& zones,
                                  const std::vector<server::ZoneOptions>* running, resolver::LoopProbes* probes,
                                  absl::Duration wait) {
  std::vector<Probe> all;
  std::vector<std::string> names;
  for (const server::ZoneOptions& z : zones) {
    if (Unchanged(z, running)) continue;
    auto zone_wire = dns::NameFromText(z.name);
    if (!zone_wire.ok()) continue;
    for (const SocketAddress& s : z.servers) {
      std::string label = absl::StrFormat("_nodedns-loop-%016x", Random64());
      std::string name = std::string(1, static_cast<char>(label.size())) + label + *zone_wire;
      if (name.size() > dns::kMaxNameLength) continue;  // a zone name too long to hold the label
      all.push_back({&z, s, name});
      names.push_back(name);
    }
  }
  if (all.empty()) return absl::OkStatus();
  probes->Arm(names);
  for (Probe& p : all) p.answered = !Send(p);
  // Wait for every answer (a loop's probe has come back in by then: we
  // answered it, and the chain carried our answer back), or for `wait`.
  auto deadline = std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(wait);
  while (true) {
    std::vector<pollfd> fds;
    std::vector<Probe*> open;
    for (Probe& p : all) {
      if (p.answered) continue;
      fds.push_back({p.fd, POLLIN, 0});
      open.push_back(&p);
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (fds.empty() || left.count() <= 0) break;
    if (poll(fds.data(), fds.size(), static_cast<int>(left.count())) <= 0) continue;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      uint8_t buf[512];
      // An answer or an error (ICMP unreachable: nothing listens there).
      if (recv(fds[i].fd, buf, sizeof(buf), 0) >= 0 || errno != EAGAIN) open[i]->answered = true;
    }
  }
  probes->Disarm();
  absl::Status result = absl::OkStatus();
  for (Probe& p : all) {
    if (p.fd >= 0) close(p.fd);
    if (result.ok() && probes->hits(p.name) > 0) {
      result = absl::FailedPreconditionError(
          "zone '" + p.zone->name + "': forwarding loop: a query for " + dns::NameToText(p.name) + " sent to " +
          p.server.ToString() +
          " came back to this nodedns (its servers lead back here, directly, through resolv.conf or through a "
          "forwarder such as systemd-resolved); point the zone at a resolver that does not forward to nodedns");
    }
  }
  return result;
}

}  // namespace nodedns::app
