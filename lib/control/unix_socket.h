#ifndef NODEDNS_LIB_CONTROL_UNIX_SOCKET_H_
#define NODEDNS_LIB_CONTROL_UNIX_SOCKET_H_

// The control socket's file: created with a mode and owner, a stale file
// from a crashed run replaced, a live one (another process answers on it)
// never stolen, and on shutdown removed only if it is still ours.

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"

namespace nodedns::control {

struct UnixSocketOptions {
  std::string path;
  int mode = 0660;
  std::string owner;  // user name, "" keeps the process's
  std::string group;  // group name, "" keeps the process's
  // Take the path over from a live socket (a predecessor that agreed to hand
  // it over): bind under a temporary name, then rename over `path`, so that
  // a socket answers on `path` at every moment.
  bool replace_live = false;
};

struct UnixListener {
  int fd = -1;  // listening, non-blocking
  dev_t dev = 0;
  ino_t ino = 0;  // of the socket file, to remove only our own
};

// Creates the parent directory if missing (mode 0755), then the socket.
absl::StatusOr<UnixListener> ListenUnix(const UnixSocketOptions& options);
// What ListenUnix checks before it touches anything: the path fits a socket
// address, the owner and group exist. For --check-config.
absl::Status CheckUnixSocketOptions(const UnixSocketOptions& options);
// Removes `path` if it is still the socket `listener` created.
void RemoveUnixSocket(const std::string& path, const UnixListener& listener);
// True if `path` is still the socket `listener` created.
bool IsOurUnixSocket(const std::string& path, const UnixListener& listener);
// Connects to a Unix stream socket (blocking, with CLOEXEC): for dnsctl and
// the liveness check.
absl::StatusOr<int> ConnectUnix(const std::string& path);

}  // namespace nodedns::control

#endif  // NODEDNS_LIB_CONTROL_UNIX_SOCKET_H_
