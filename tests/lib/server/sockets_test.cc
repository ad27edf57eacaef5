#include "lib/server/sockets.h"

#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "gtest/gtest.h"

namespace nodedns::server {
namespace {

int OpenDescriptors() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n;
}

uint16_t LocalPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len), 0);
  return SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss)).port();
}

int SocketType(int fd) {
  int type = 0;
  socklen_t len = sizeof(type);
  getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
  return type;
}

TEST(BindListenersTest, PortZeroGivesEverySocketTheSamePortAndEachGroupItsCount) {
  auto bound = BindListeners({*SocketAddress::Parse("127.0.0.1:0")}, 3, 2);
  ASSERT_TRUE(bound.ok()) << bound.status();
  ASSERT_EQ(bound->size(), 1u);
  const BoundAddress& b = (*bound)[0];
  EXPECT_NE(b.address.port(), 0);
  EXPECT_EQ(b.address.HostString(), "127.0.0.1");
  ASSERT_EQ(b.udp_fds.size(), 3u);
  ASSERT_EQ(b.tcp_fds.size(), 2u);
  for (int fd : b.udp_fds) {
    EXPECT_EQ(LocalPort(fd), b.address.port());
    EXPECT_EQ(SocketType(fd), SOCK_DGRAM);
  }
  for (int fd : b.tcp_fds) {
    EXPECT_EQ(LocalPort(fd), b.address.port());
    EXPECT_EQ(SocketType(fd), SOCK_STREAM);
    int listening = 0;
    socklen_t len = sizeof(listening);
    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
    EXPECT_TRUE(listening);
  }
  CloseAll(*bound);
  EXPECT_TRUE((*bound)[0].udp_fds.empty());
  EXPECT_TRUE((*bound)[0].tcp_fds.empty());
}

TEST(BindListenersTest, AnotherProcessesPortIsRefused) {
  // A socket without SO_REUSEPORT holds the port: we must not share it.
  int other = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(other, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  uint16_t port = LocalPort(other);
  int before = OpenDescriptors();
  auto bound = BindListeners({*SocketAddress::Parse("127.0.0.1:" + std::to_string(port))}, 1, 1);
  EXPECT_TRUE(absl::IsAlreadyExists(bound.status())) << bound.status();
  EXPECT_EQ(OpenDescriptors(), before) << "descriptors leaked on failure";
  close(other);
}

TEST(BindListenersTest, AnAddressNotOnThisHostFailsAndLeaksNothing) {
  int before = OpenDescriptors();
  // The first address binds, the second cannot: the first is closed again.
  auto bound =
      BindListeners({*SocketAddress::Parse("127.0.0.1:0"), *SocketAddress::Parse("192.0.2.1:5353")}, 2, 2);
  ASSERT_FALSE(bound.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(bound.status())) << bound.status();
  EXPECT_NE(bound.status().message().find("192.0.2.1:5353"), std::string::npos) << bound.status();
  EXPECT_EQ(OpenDescriptors(), before) << "descriptors leaked on failure";
}

TEST(BindListenersTest, Ipv6IsV6Only) {
  auto bound = BindListeners({*SocketAddress::Parse("[::1]:0")}, 1, 1);
  if (!bound.ok()) GTEST_SKIP() << "no IPv6 loopback: " << bound.status();
  int v6only = 0;
  socklen_t len = sizeof(v6only);
  getsockopt((*bound)[0].udp_fds[0], IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len);
  EXPECT_TRUE(v6only);
  EXPECT_EQ((*bound)[0].address.ToString(), "[::1]:" + std::to_string((*bound)[0].address.port()));
  CloseAll(*bound);
}

TEST(BindTcpListenerTest, ReportsThePortItGot) {
  SocketAddress bound_address;
  auto fd = BindTcpListener(*SocketAddress::Parse("127.0.0.1:0"), &bound_address);
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_NE(bound_address.port(), 0);
  EXPECT_EQ(LocalPort(*fd), bound_address.port());
  close(*fd);
}

}  // namespace
}  // namespace nodedns::server
