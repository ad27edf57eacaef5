#include "tests/support/endpoints.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>

#include "tests/support/dns_client.h"

namespace nodedns::testing {
namespace {

uint16_t Port(const std::string& address) {
  return static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
}

// Writes `data`, then reads until EOF or the deadline.
std::string Exchange(int fd, const std::string& data, int timeout_ms) {
  if (fd < 0) return "";
  (void)!write(fd, data.data(), data.size());
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[65536];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

}  // namespace

int ConnectIdleUnix(const std::string& socket_path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket_path.c_str());
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int ConnectIdleTcp(const std::string& address) { return ConnectLoopback(SOCK_STREAM, Port(address)); }

bool ClosedByPeer(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  char c;
  return recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK) <= 0;
}

nlohmann::json ControlExchange(const std::string& socket_path, const std::string& line) {
  return nlohmann::json::parse(Exchange(ConnectIdleUnix(socket_path), line, 10000), nullptr, false);
}

std::string HttpExchange(const std::string& address, const std::string& request, int timeout_ms) {
  return Exchange(ConnectIdleTcp(address), request, timeout_ms);
}

std::string HttpGet(const std::string& address, const std::string& path, int timeout_ms) {
  return HttpExchange(address, "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n", timeout_ms);
}

int OpenDescriptors(int pid) {
  std::error_code ec;
  int n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

}  // namespace nodedns::testing
