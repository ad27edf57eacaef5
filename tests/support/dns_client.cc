#include "tests/support/dns_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "gtest/gtest.h"
#include "lib/common/socket_address.h"
#include "lib/dns/name.h"

namespace nodedns::testing {

std::vector<uint8_t> MakeQuery(const std::string& name, uint16_t type, const QueryOptions& o) {
  dns::Message m;
  m.id = o.id;
  m.flags = dns::kFlagRD | (o.checking_disabled ? dns::kFlagCD : 0);
  m.questions.push_back({*dns::NameFromText(name), type, dns::kClassIN});
  if (o.edns) {
    dns::Edns e;
    e.udp_size = o.udp_size;
    e.dnssec_ok = o.dnssec_ok;
    e.version = o.edns_version;
    m.edns = e;
  }
  return *dns::WriteMessage(m);
}

namespace {

int Connect(const std::string& host, uint16_t port, int type) {
  auto addr = SocketAddress::Parse(host, port);
  if (!addr.ok()) return -1;
  addr->set_port(port);
  int fd = socket(addr->family(), type, 0);
  if (fd < 0) return -1;
  if (connect(fd, addr->sockaddr_ptr(), addr->length()) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool WaitReadable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, timeout_ms) == 1;
}

// Reads exactly n bytes before the deadline.
bool ReadFull(int fd, uint8_t* out, size_t n, std::chrono::steady_clock::time_point deadline) {
  size_t got = 0;
  while (got < n) {
    int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
    if (left <= 0 || !WaitReadable(fd, left)) return false;
    ssize_t r = read(fd, out + got, n - got);
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

}  // namespace

uint16_t FreeLoopbackPort() {
  for (int attempt = 0; attempt < 20; ++attempt) {
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    bind(u, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    getsockname(u, reinterpret_cast<sockaddr*>(&a), &len);
    int t = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = bind(t, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    close(u);
    close(t);
    if (ok) return ntohs(a.sin_port);
  }
  return 0;
}

int ConnectLoopback(int type, uint16_t port) { return Connect("127.0.0.1", port, type); }

std::optional<std::vector<uint8_t>> UdpExchange(const std::string& host, uint16_t port,
                                                const std::vector<uint8_t>& query, int timeout_ms) {
  int fd = Connect(host, port, SOCK_DGRAM);
  if (fd < 0) return std::nullopt;
  std::optional<std::vector<uint8_t>> out;
  if (send(fd, query.data(), query.size(), 0) == static_cast<ssize_t>(query.size()) && WaitReadable(fd, timeout_ms)) {
    std::vector<uint8_t> buf(65536);
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n > 0) {
      buf.resize(static_cast<size_t>(n));
      out = std::move(buf);
    }
  }
  close(fd);
  return out;
}

std::vector<std::vector<uint8_t>> TcpPipeline(const std::string& host, uint16_t port,
                                              const std::vector<std::vector<uint8_t>>& queries, int timeout_ms) {
  std::vector<std::vector<uint8_t>> answers;
  int fd = Connect(host, port, SOCK_STREAM);
  if (fd < 0) return answers;
  std::vector<uint8_t> all;
  for (const auto& q : queries) {
    all.push_back(static_cast<uint8_t>(q.size() >> 8));
    all.push_back(static_cast<uint8_t>(q.size()));
    all.insert(all.end(), q.begin(), q.end());
  }
  if (write(fd, all.data(), all.size()) != static_cast<ssize_t>(all.size())) {
    close(fd);
    return answers;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (size_t i = 0; i < queries.size(); ++i) {
    uint8_t len[2];
    if (!ReadFull(fd, len, 2, deadline)) break;
    std::vector<uint8_t> a(dns::Read16(len));
    if (!ReadFull(fd, a.data(), a.size(), deadline)) break;
    answers.push_back(std::move(a));
  }
  close(fd);
  return answers;
}

std::optional<std::vector<uint8_t>> TcpExchange(const std::string& host, uint16_t port,
                                                const std::vector<uint8_t>& query, int timeout_ms) {
  auto answers = TcpPipeline(host, port, {query}, timeout_ms);
  if (answers.size() != 1) return std::nullopt;
  return answers[0];
}

dns::Message Parse(const std::vector<uint8_t>& wire) {
  auto m = dns::ParseMessage(wire);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *m : dns::Message{};
}

std::string RunCommand(const std::string& command, int* exit_code) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int st = pclose(p);
  if (exit_code) *exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

}  // namespace nodedns::testing
