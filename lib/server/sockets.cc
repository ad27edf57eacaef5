#include "lib/server/sockets.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>

namespace nodedns::server {

namespace {

absl::StatusOr<int> OpenBound(const SocketAddress& addr, int type) {
  int fd = socket(addr.family(), type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, "socket(" + addr.ToString() + ")");
  int one = 1;
  // SO_REUSEADDR only for TCP (TIME_WAIT). On UDP it would let us share a
  // port with an unrelated server that also set it, silently splitting its
  // traffic; SO_REUSEPORT alone shares only with sockets that opted in (a
  // successor nodedns of the same user).
  if (type == SOCK_STREAM) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    int err = errno;
    close(fd);
    return ErrnoStatus(err, "SO_REUSEPORT on " + addr.ToString());
  }
  if (addr.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (type == SOCK_DGRAM) {
    int rcvbuf = 4 << 20;  // ride out bursts while the loop is busy
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  }
  if (bind(fd, addr.sockaddr_ptr(), addr.length()) != 0) {
    int err = errno;
    close(fd);
    return ErrnoStatus(err, std::string("bind ") + (type == SOCK_DGRAM ? "udp " : "tcp ") + addr.ToString());
  }
  if (type == SOCK_STREAM && listen(fd, 1024) != 0) {
    int err = errno;
    close(fd);
    return ErrnoStatus(err, "listen " + addr.ToString());
  }
  return fd;
}

absl::StatusOr<uint16_t> BoundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return ErrnoStatus(errno, "getsockname");
  return SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss)).port();
}

// Binds the UDP and TCP sockets on `addr`; port 0 was resolved before (the
// first UDP socket is open).
absl::Status BindAll(const SocketAddress& addr, int udp_sockets, int tcp_sockets, BoundAddress* out) {
  while (out->udp_fds.size() < static_cast<size_t>(udp_sockets)) {
    auto u = OpenBound(addr, SOCK_DGRAM);
    if (!u.ok()) return u.status();
    out->udp_fds.push_back(*u);
  }
  while (out->tcp_fds.size() < static_cast<size_t>(tcp_sockets)) {
    auto t = OpenBound(addr, SOCK_STREAM);
    if (!t.ok()) return t.status();
    out->tcp_fds.push_back(*t);
  }
  return absl::OkStatus();
}

void CloseOne(BoundAddress& b) {
  for (int fd : b.udp_fds) close(fd);
  for (int fd : b.tcp_fds) close(fd);
  b.udp_fds.clear();
  b.tcp_fds.clear();
}

}  // namespace

absl::StatusOr<std::vector<BoundAddress>> BindListeners(const std::vector<SocketAddress>& addresses, int udp_sockets,
                                                        int tcp_sockets) {
  std::vector<BoundAddress> out;
  for (const SocketAddress& requested : addresses) {
    BoundAddress b;
    b.address = requested;
    absl::Status st;
    // With port 0, the UDP port the kernel picks may be taken for TCP by
    // someone else: try a few times.
    for (int attempt = 0; attempt < (requested.port() == 0 ? 20 : 1); ++attempt) {
      CloseOne(b);
      b.address = requested;
      auto first = OpenBound(requested, SOCK_DGRAM);
      if (!first.ok()) {
        st = first.status();
        break;
      }
      b.udp_fds.push_back(*first);
      auto port = BoundPort(*first);
      if (!port.ok()) {
        st = port.status();
        break;
      }
      b.address.set_port(*port);
      st = BindAll(b.address, udp_sockets, tcp_sockets, &b);
      if (st.ok() || !absl::IsAlreadyExists(st)) break;
    }
    if (!st.ok()) {
      CloseOne(b);
      CloseAll(out);
      return st;
    }
    out.push_back(std::move(b));
  }
  return out;
}

void CloseAll(std::vector<BoundAddress>& bound) {
  for (BoundAddress& b : bound) CloseOne(b);
}

absl::StatusOr<int> BindTcpListener(const SocketAddress& address, SocketAddress* bound) {
  auto fd = OpenBound(address, SOCK_STREAM);
  if (!fd.ok()) return fd.status();
  auto port = BoundPort(*fd);
  if (!port.ok()) {
    close(*fd);
    return port.status();
  }
  *bound = address;
  bound->set_port(*port);
  return *fd;
}

}  // namespace nodedns::server
