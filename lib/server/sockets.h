#ifndef NODEDNS_LIB_SERVER_SOCKETS_H_
#define NODEDNS_LIB_SERVER_SOCKETS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/common/errno_status.h"
#include "lib/common/socket_address.h"

namespace nodedns::server {

// The sockets for one listen address: a UDP socket per UDP worker and a
// listening TCP socket per TCP worker, all bound with SO_REUSEPORT to the
// same address (so a successor process can
// bind it too). With port 0 the kernel's choice for the first UDP socket is
// used for every other socket of that address.
struct BoundAddress {
  SocketAddress address;  // with the real port
  std::vector<int> udp_fds;
  std::vector<int> tcp_fds;  // listening
};

absl::StatusOr<std::vector<BoundAddress>> BindListeners(const std::vector<SocketAddress>& addresses, int udp_sockets,
                                                        int tcp_sockets);
void CloseAll(std::vector<BoundAddress>& bound);

// One listening TCP socket (SO_REUSEPORT, as the DNS listeners), for the
// HTTP endpoint. *bound gets the address with the real port.
absl::StatusOr<int> BindTcpListener(const SocketAddress& address, SocketAddress* bound);

}  // namespace nodedns::server

#endif  // NODEDNS_LIB_SERVER_SOCKETS_H_
