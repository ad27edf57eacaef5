#include "lib/control/peer.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace nodedns::control {
namespace {

TEST(PeerTest, UnixPeerIsKnownFromTheKernel) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  PeerCredentials p = ReadPeerCredentials(fds[0]);
  EXPECT_TRUE(p.known);
  EXPECT_EQ(p.pid, getpid());
  EXPECT_EQ(p.uid, geteuid());
  EXPECT_EQ(p.gid, getegid());
  close(fds[0]);
  close(fds[1]);
}

// Linux answers SO_PEERCRED for TCP sockets too (pid 0, uid and gid -1):
// those must not count as known credentials.
TEST(PeerTest, ATcpPeerIsUnknown) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  socklen_t len = sizeof(sin);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&sin), &len), 0);
  int client = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  int accepted = accept(listener, nullptr, nullptr);
  ASSERT_GE(accepted, 0);
  PeerCredentials p = ReadPeerCredentials(accepted);
  EXPECT_FALSE(p.known);
  EXPECT_EQ(p.pid, 0);
  EXPECT_EQ(p.uid, static_cast<uid_t>(-1));
  close(accepted);
  close(client);
  close(listener);
  EXPECT_FALSE(ReadPeerCredentials(-1).known);
}

}  // namespace
}  // namespace nodedns::control
