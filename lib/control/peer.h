#ifndef NODEDNS_LIB_CONTROL_PEER_H_
#define NODEDNS_LIB_CONTROL_PEER_H_

// Who is on the other end of a control connection, as the kernel tells it
// (SO_PEERCRED): a request cannot lie about it. The PID is as seen from our
// PID namespace, 0 if the peer's process is not visible in it (another pod).

#include <sys/types.h>

namespace nodedns::control {

struct PeerCredentials {
  bool known = false;  // false for TCP peers and when SO_PEERCRED failed
  pid_t pid = 0;
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
};

// The credentials of the peer of a connected Unix stream socket.
PeerCredentials ReadPeerCredentials(int fd);

}  // namespace nodedns::control

#endif  // NODEDNS_LIB_CONTROL_PEER_H_
