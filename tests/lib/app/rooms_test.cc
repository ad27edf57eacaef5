// The small rooms of lib/app around the composition root: the interface's
// options, the control socket's options, the process's ready file and user
// lookup.

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "lib/app/control_socket.h"
#include "lib/app/interface.h"
#include "lib/app/process.h"
#include "tests/support/daemon_process.h"

namespace nodedns::app {
namespace {

SocketAddress Addr(const std::string& text) { return *SocketAddress::Parse(text, 53); }

TEST(InterfaceOptionsTest, TheListenAddressesUnlessAddressesAreGivenWithTheirListenPorts) {
  config::Config c;
  c.listen = {Addr("169.254.20.10:5353"), Addr("[fd00::10]:53")};
  c.interface_name = "nodedns0";
  c.interface_notrack = true;
  netif::InterfaceOptions o = InterfaceOptionsFor(c);
  EXPECT_EQ(o.name, "nodedns0");
  EXPECT_TRUE(o.notrack);
  ASSERT_EQ(o.addresses.size(), 2u);
  EXPECT_EQ(o.addresses[0].ToString(), "169.254.20.10:5353");

  // Given addresses: each takes the port of the listen address with its host
  // (the port the NOTRACK rules match); one that nobody listens on keeps its own.
  c.interface_addresses = {Addr("169.254.20.10:53"), Addr("10.96.0.10:53")};
  o = InterfaceOptionsFor(c);
  ASSERT_EQ(o.addresses.size(), 2u);
  EXPECT_EQ(o.addresses[0].port(), 5353);
  EXPECT_EQ(o.addresses[1].ToString(), "10.96.0.10:53");
}

TEST(ControlSocketOptionsTest, FromTheControlTable) {
  config::Config c;
  c.control_socket = "/run/x/control.sock";
  c.control_socket_mode = 0600;
  c.control_socket_owner = "dns";
  c.control_socket_group = "ops";
  control::UnixSocketOptions o = ControlSocketOptionsFor(c);
  EXPECT_EQ(o.path, "/run/x/control.sock");
  EXPECT_EQ(o.mode, 0600);
  EXPECT_EQ(o.owner, "dns");
  EXPECT_EQ(o.group, "ops");
}

TEST(ControlSocketTest, AnEmptyPathIsNoSocketAndEveryCallDoesNothing) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  {
    ControlSocket s(&loop, control::UnixSocketOptions{}, nullptr);
    EXPECT_FALSE(s.enabled());
    EXPECT_FALSE(s.active());
    s.Close();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(ReadyFileTest, WrittenWholeOrNotAtAll) {
  testing::TempDir dir;
  std::string path = dir.path() + "/ready";
  ASSERT_TRUE(WriteReadyFile(path, {"127.0.0.1:5353", "pid 42"}));
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "127.0.0.1:5353\npid 42\n");
  struct stat st;
  EXPECT_NE(stat((path + ".tmp").c_str(), &st), 0);  // renamed, not left behind
  EXPECT_FALSE(WriteReadyFile(dir.path() + "/no/such/dir/ready", {"x"}));
}

TEST(LookUpUserTest, AnUnknownUserIsNotFound) {
  auto r = LookUpUser("nodedns-no-such-user-7d1f");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace nodedns::app
