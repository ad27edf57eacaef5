#include "lib/common/socket_table.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include "lib/common/errno_status.h"

namespace nodedns {
namespace {

// "0100007F:0035" (IPv4) or 32 hex digits and a port (IPv6): the address as
// the kernel prints it, each 32-bit word in host byte order.
bool ParseHexAddress(std::string_view text, int family, SocketAddress* out) {
  size_t colon = text.find(':');
  size_t words = family == AF_INET ? 1 : 4;
  if (colon != words * 8) return false;
  uint32_t w[4];
  for (size_t i = 0; i < words; ++i) {
    auto [p, ec] = std::from_chars(text.data() + i * 8, text.data() + i * 8 + 8, w[i], 16);
    if (ec != std::errc() || p != text.data() + i * 8 + 8) return false;
  }
  uint16_t port = 0;
  std::string_view port_text = text.substr(colon + 1);
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port, 16);
  if (ec != std::errc() || p != port_text.data() + port_text.size()) return false;
  sockaddr_storage ss{};
  if (family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    std::memcpy(&sin->sin_addr, &w[0], 4);
    sin->sin_port = htons(port);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    std::memcpy(&sin6->sin6_addr, w, 16);
    sin6->sin6_port = htons(port);
  }
  *out = SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss));
  return true;
}

std::string ReadLink(const std::string& path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

// "socket:[12345]" -> 12345, else 0.
uint64_t SocketInode(std::string_view link) {
  if (link.substr(0, 8) != "socket:[" || link.back() != ']') return 0;
  uint64_t inode = 0;
  std::string_view digits = link.substr(8, link.size() - 9);
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), inode);
  return ec == std::errc() && p == digits.data() + digits.size() ? inode : 0;
}

}  // namespace

std::vector<BoundSocket> ParseSocketTable(std::string_view text, int family, SocketProtocol protocol) {
  std::vector<BoundSocket> out;
  std::istringstream in{std::string(text)};
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
    std::istringstream fields(line);
    std::string sl, local, remote, state, queues, timer, retransmits;
    uint64_t uid = 0, timeout = 0, inode = 0;
    if (!(fields >> sl >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode)) {
      continue;
    }
    BoundSocket s;
    if (!ParseHexAddress(local, family, &s.local)) continue;
    s.inode = inode;
    s.uid = static_cast<uid_t>(uid);
    // TCP_LISTEN is 0x0A; an unconnected UDP socket has no remote port.
    s.listening = protocol == SocketProtocol::kTcp ? state == "0A" : remote.substr(remote.find(':') + 1) == "0000";
    out.push_back(s);
  }
  return out;
}

absl::StatusOr<std::vector<BoundSocket>> ReadSocketTable(SocketProtocol protocol) {
  std::vector<BoundSocket> all;
  const char* base = protocol == SocketProtocol::kUdp ? "/proc/net/udp" : "/proc/net/tcp";
  for (int family : {AF_INET, AF_INET6}) {
    std::string path = std::string(base) + (family == AF_INET6 ? "6" : "");
    std::ifstream in(path);
    if (!in) {
      if (family == AF_INET6) continue;  // a kernel without IPv6
      return ErrnoStatus(errno, "cannot read " + path);
    }
    std::stringstream ss;
    ss << in.rdbuf();
    std::vector<BoundSocket> part = ParseSocketTable(ss.str(), family, protocol);
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

std::vector<BoundSocket> ListenersFor(const std::vector<BoundSocket>& table, const SocketAddress& address) {
  std::vector<BoundSocket> out;
  for (const BoundSocket& s : table) {
    if (s.listening && s.local == address) out.push_back(s);
  }
  return out;
}

absl::StatusOr<absl::flat_hash_set<uint64_t>> SocketInodesOf(const std::string& pid) {
  std::string dir = "/proc/" + pid + "/fd";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus(errno, "cannot read " + dir);
  absl::flat_hash_set<uint64_t> out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    if (uint64_t inode = SocketInode(ReadLink(dir + "/" + e->d_name))) out.insert(inode);
  }
  closedir(d);
  return out;
}

std::vector<pid_t> ProcessesHolding(uint64_t inode) {
  std::vector<pid_t> out;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* e = readdir(proc)) {
    pid_t pid = 0;
    std::string_view name = e->d_name;
    auto [p, ec] = std::from_chars(name.data(), name.data() + name.size(), pid);
    if (ec != std::errc() || p != name.data() + name.size()) continue;
    auto inodes = SocketInodesOf(std::string(name));
    if (inodes.ok() && inodes->contains(inode)) out.push_back(pid);
  }
  closedir(proc);
  return out;
}

std::string DescribeProcess(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string comm;
  if (!std::getline(in, comm) || comm.empty()) return "pid " + std::to_string(pid);
  return comm + " (pid " + std::to_string(pid) + ")";
}

std::string ExecutableName(const std::string& pid) {
  std::string exe = ReadLink("/proc/" + pid + "/exe");
  constexpr std::string_view kDeleted = " (deleted)";
  if (exe.size() > kDeleted.size() && exe.compare(exe.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0) {
    exe.resize(exe.size() - kDeleted.size());
  }
  return exe.substr(exe.rfind('/') + 1);
}

}  // namespace nodedns
