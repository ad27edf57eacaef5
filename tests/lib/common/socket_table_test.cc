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

// A line of /proc/net/{udp,tcp}[6]: slot, local and remote address, state,
// queues, timer, retransmits, uid, timeout, inode, then more we ignore.
std::string Line(const std::string& local, const std::string& remote, const std::string& state, int uid,
                 int inode) {
  return "  0: " + local + " " + remote + " " + state + " 00000000:00000000 00:00000000 00000000 " +
         std::to_string(uid) + " 0 " + std::to_string(inode) + " 2 0 0\n";
}

TEST(ParseSocketTableTest, ReadsTheKernelsFormat) {
  const std::string header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n";
  std::string v4 = header + Line("0100007F:14B4", "00000000:0000", "07", 1000, 424242) +
                   Line("0100007F:D431", "0A000001:0035", "01", 1000, 424243);
  auto udp = ParseSocketTable(v4, AF_INET, SocketProtocol::kUdp);
  ASSERT_EQ(udp.size(), 2u);
  EXPECT_EQ(udp[0].local.ToString(), "127.0.0.1:5300");
  EXPECT_EQ(udp[0].inode, 424242u);
  EXPECT_EQ(udp[0].uid, 1000u);
  EXPECT_TRUE(udp[0].listening);
  EXPECT_FALSE(udp[1].listening);  // connected to 10.0.0.1:53: an upstream socket
  std::string v6 = header + Line("00000000000000000000000001000000:2475", std::string(32, '0') + ":0000", "0A", 0, 77) +
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
