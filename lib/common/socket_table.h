#ifndef NODEDNS_LIB_COMMON_SOCKET_TABLE_H_
#define NODEDNS_LIB_COMMON_SOCKET_TABLE_H_

// Which sockets, of which processes, are bound to an address: the kernel's
// own tables (/proc/net/{udp,udp6,tcp,tcp6} of this network namespace) and
// the processes' descriptors (/proc/PID/fd). SO_REUSEPORT lets every socket
// of one user join a port's group silently; this is how nodedns sees who else
// is in it (another nodedns it must not serve beside, or the successor that
// asks to take over).

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "lib/common/socket_address.h"

namespace nodedns {

struct BoundSocket {
  SocketAddress local;
  uint64_t inode = 0;
  uid_t uid = 0;
  bool listening = false;  // TCP: in LISTEN state; UDP: not connected
};

enum class SocketProtocol { kUdp, kTcp };

// Every socket of `protocol` (IPv4 and IPv6) in this network namespace.
absl::StatusOr<std::vector<BoundSocket>> ReadSocketTable(SocketProtocol protocol);
// Parses one /proc/net/{udp,tcp}[6] file's text (for tests).
std::vector<BoundSocket> ParseSocketTable(std::string_view text, int family, SocketProtocol protocol);

// The listening sockets of `table` bound to exactly `address`: a reuseport
// group, whose members share the traffic. (A socket on the wildcard address
// shares nothing with one on a specific address: the specific one wins.)
std::vector<BoundSocket> ListenersFor(const std::vector<BoundSocket>& table, const SocketAddress& address);

// The socket inodes a process holds ("self" for this one). Error if its
// descriptors cannot be read (gone, or another user's without privilege).
absl::StatusOr<absl::flat_hash_set<uint64_t>> SocketInodesOf(const std::string& pid);
// Processes holding a socket inode, by scanning /proc (those we may inspect).
std::vector<pid_t> ProcessesHolding(uint64_t inode);
// "nodedns (pid 123)", or "pid 123" if the name is unreadable.
std::string DescribeProcess(pid_t pid);
// The executable's base name ("nodedns"), without a " (deleted)" suffix
// (an upgraded binary); "" if unreadable.
std::string ExecutableName(const std::string& pid);

}  // namespace nodedns

#endif  // NODEDNS_LIB_COMMON_SOCKET_TABLE_H_
