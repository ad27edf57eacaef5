#include "lib/app/startup_check.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "lib/app/control_socket.h"
#include "lib/app/process.h"
#include "lib/common/errno_status.h"

namespace nodedns::app {
namespace {

// A bind to the address with port 0 (so nothing in use is disturbed): fails
// with EADDRNOTAVAIL when the address is not this host's.
absl::Status CheckLocal(const SocketAddress& a, const std::string& what) {
  SocketAddress probe = a;
  probe.set_port(0);
  int fd = socket(probe.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, what + " " + a.ToString() + ": socket");
  int rc = bind(fd, probe.sockaddr_ptr(), probe.length());
  int err = errno;
  close(fd);
  if (rc == 0) return absl::OkStatus();
  std::string hint = err == EADDRNOTAVAIL ? " (not an address of this host; [interface] setup adds it at start-up)"
                                          : "";
  return ErrnoStatus(err, what + " " + a.ToString() + hint);
}

}  // namespace

absl::Status CheckStartup(const config::CommandLine& cl, const config::Config& c) {
  if (cl.user) {
    if (auto as = LookUpUser(*cl.user); !as.ok()) return as.status();
  }
  if (!c.control_socket.empty()) {
    if (auto st = control::CheckUnixSocketOptions(ControlSocketOptionsFor(c)); !st.ok()) return st;
  }
  return absl::OkStatus();
}

std::vector<std::string> HostAddressWarnings(const config::Config& c) {
  std::vector<std::string> out;
  auto check = [&out](const SocketAddress& a, const std::string& what) {
    if (auto st = CheckLocal(a, what); !st.ok()) out.push_back(std::string(st.message()));
  };
  if (!c.interface_setup) {
    for (const SocketAddress& a : c.listen) check(a, "server.listen");
  }
  if (c.metrics_listen) check(*c.metrics_listen, "metrics.listen");
  if (c.health_listen) check(*c.health_listen, "health.listen");
  return out;
}

}  // namespace nodedns::app
