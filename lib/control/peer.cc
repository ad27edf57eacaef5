#include "lib/control/peer.h"

#include <sys/socket.h>

namespace nodedns::control {

PeerCredentials ReadPeerCredentials(int fd) {
  PeerCredentials p;
  // Linux answers SO_PEERCRED on any socket: for TCP with pid 0 and uid and
  // gid -1, which must not read as known credentials.
  int domain = 0;
  socklen_t domain_len = sizeof(domain);
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &domain_len) != 0 || domain != AF_UNIX) return p;
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred)) return p;
  p.known = true;
  p.pid = cred.pid;
  p.uid = cred.uid;
  p.gid = cred.gid;
  return p;
}

}  // namespace nodedns::control
