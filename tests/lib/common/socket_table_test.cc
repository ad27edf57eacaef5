#include "lib/common/socket_table.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nodedns {
namespace {

using ::testing::HasSubstr;

TEST(ParseSocketTableTest, ReadsTheKernelsFormat) {
  const char* v4 =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
      "  1: 0100007F:14B4 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 424242 2 0 0\n"
      "  2: 0100007F:D431 0A000001:0035 01 00000000:00000000 00:00000000 00000000  1000        0 424243 2 0 0\n";
  auto udp = ParseSocketTable(v4, AF_INET, SocketProtocol::kUdp);
  ASSERT_EQ(udp.size(), 2u);
  EXPECT_EQ(udp[0].local.ToString(), "127.0.0.1:5300");
  EXPECT_EQ(udp[0].inode, 424242u);
  EXPECT_EQ(udp[0].uid, 1000u);
  EXPECT_TRUE(udp[0].listening);
  EXPECT_FALSE(udp[1].listening);  // connected to 10.0.0.1:53: an upstream socket
  const char* v6 =
      "  sl  local_address                         remote_address                        st tx_queue rx_queue tr "
      "tm->when retrnsmt   uid  timeout inode\n"
      "   0: 00000000000000000000000001000000:2475 00000000000000000000000000000000:0000 0A 00000000:00000000 "
      "00:00000000 00000000     0        0 77 1 0 100 0 0 10 0\n"
      "   1: garbage\n";
  auto tcp = ParseSocketTable(v6, AF_INET6, SocketProtocol::kTcp);
  ASSERT_EQ(tcp.size(), 1u);
  EXPECT_EQ(tcp[0].local.ToString(), "[::1]:9333");
  EXPECT_TRUE(tcp[0].listening);
}

TEST(SocketTableTest, FindsOurOwnListenerAndItsProcess) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  SocketAddress any = *SocketAddress::Parse("127.0.0.1:0");
  ASSERT_EQ(bind(fd, any.sockaddr_ptr(), any.length()), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  SocketAddress bound = SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss));

  auto table = ReadSocketTable(SocketProtocol::kTcp);
  ASSERT_TRUE(table.ok()) << table.status();
  auto on = ListenersFor(*table, bound);
  ASSERT_EQ(on.size(), 1u);
  EXPECT_EQ(on[0].uid, geteuid());
  auto mine = SocketInodesOf("self");
  ASSERT_TRUE(mine.ok());
  EXPECT_TRUE(mine->contains(on[0].inode));
  std::vector<pid_t> holders = ProcessesHolding(on[0].inode);
  EXPECT_NE(std::find(holders.begin(), holders.end(), getpid()), holders.end());
  EXPECT_THAT(DescribeProcess(getpid()), HasSubstr("(pid " + std::to_string(getpid()) + ")"));
  EXPECT_EQ(ExecutableName("self"), "nodedns_unit_tests");
  close(fd);
  table = ReadSocketTable(SocketProtocol::kTcp);
  EXPECT_TRUE(ListenersFor(*table, bound).empty());
  EXPECT_FALSE(SocketInodesOf("999999999").ok());
}

}  // namespace
}  // namespace nodedns
