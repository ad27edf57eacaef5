#include "lib/common/sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "lib/common/errno_status.h"

namespace nodedns {

absl::Status SdNotify(std::string_view state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return absl::OkStatus();
  size_t len = std::strlen(path);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if ((path[0] != '/' && path[0] != '@') || len >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(std::string("NOTIFY_SOCKET is not a usable socket path: ") + path);
  }
  std::memcpy(addr.sun_path, path, len);
  if (path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  socklen_t addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, "NOTIFY_SOCKET socket");
  ssize_t n = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), addr_len);
  int err = errno;
  close(fd);
  if (n < 0) return ErrnoStatus(err, std::string("sd_notify to ") + path);
  return absl::OkStatus();
}

absl::Duration SdWatchdogInterval() {
  const char* usec = std::getenv("WATCHDOG_USEC");
  if (usec == nullptr) return absl::ZeroDuration();
  if (const char* pid = std::getenv("WATCHDOG_PID"); pid != nullptr) {
    long p = 0;
    auto [end, ec] = std::from_chars(pid, pid + std::strlen(pid), p);
    if (ec != std::errc() || p != static_cast<long>(getpid())) return absl::ZeroDuration();
  }
  unsigned long long us = 0;
  const char* usec_end = usec + std::strlen(usec);
  auto [end, ec] = std::from_chars(usec, usec_end, us);
  // Only a whole number that fits a duration: "5000000abc" is not one, and
  // 2^63 or more would turn negative.
  if (ec != std::errc() || end != usec_end || us == 0 || us > static_cast<unsigned long long>(INT64_MAX)) {
    return absl::ZeroDuration();
  }
  return absl::Microseconds(static_cast<int64_t>(us));
}

}  // namespace nodedns
