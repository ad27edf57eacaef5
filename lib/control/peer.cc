#include "lib/control/peer.h"

#include <sys/socket.h>

namespace nodedns::control {

PeerCredentials ReadPeerCredentials(int fd) {
  PeerCredentials p;
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
