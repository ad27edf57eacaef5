#ifndef NODEDNS_LIB_COMMON_SOCKET_ADDRESS_H_
#define NODEDNS_LIB_COMMON_SOCKET_ADDRESS_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace nodedns {

// An IPv4 or IPv6 address with a port. Value type, cheap to copy.
class SocketAddress {
 public:
  SocketAddress() = default;
  // Parses "1.2.3.4:53", "[::1]:53". When default_port is set, the port may be
  // omitted ("1.2.3.4", "::1", "[::1]").
  static absl::StatusOr<SocketAddress> Parse(std::string_view text, int default_port = -1);
  static SocketAddress FromSockaddr(const sockaddr* sa);

  const sockaddr* sockaddr_ptr() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t length() const;
  int family() const { return storage_.ss_family; }
  uint16_t port() const;
  void set_port(uint16_t port);
  bool is_valid() const { return storage_.ss_family == AF_INET || storage_.ss_family == AF_INET6; }
  // "1.2.3.4:53" or "[::1]:53".
  std::string ToString() const;
  // The address without the port: "1.2.3.4" or "::1".
  std::string HostString() const;

  friend bool operator==(const SocketAddress& a, const SocketAddress& b) {
    return a.ToString() == b.ToString();
  }

 private:
  sockaddr_storage storage_{};
};

}  // namespace nodedns

#endif  // NODEDNS_LIB_COMMON_SOCKET_ADDRESS_H_
