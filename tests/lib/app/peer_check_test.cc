#include "lib/app/peer_check.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/common/socket_table.h"
#include "lib/control/protocol.h"

namespace nodedns::app {
namespace {

using ::testing::HasSubstr;

// A UDP and a listening TCP socket on `address` with SO_REUSEPORT, as
// nodedns binds them; port 0 picks one (the same for both).
std::vector<int> BindPair(SocketAddress* address) {
  std::vector<int> fds;
  for (int type : {SOCK_DGRAM, SOCK_STREAM}) {
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, address->sockaddr_ptr(), address->length()) != 0) return {};
    if (type == SOCK_STREAM) listen(fd, 8);
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    *address = SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss));
    fds.push_back(fd);
  }
  return fds;
}

// Another process (a fork of this test) holding a socket pair on an
// address, until destroyed.
class OtherProcess {
 public:
  explicit OtherProcess(SocketAddress address) : address_(address) {
    int ready[2];
    EXPECT_EQ(pipe(ready), 0);
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<int> fds = BindPair(&address_);
      uint16_t port = fds.empty() ? 0 : address_.port();
      (void)!write(ready[1], &port, sizeof(port));
      pause();  // until killed
      _exit(0);
    }
    close(ready[1]);
    uint16_t port = 0;
    EXPECT_EQ(read(ready[0], &port, sizeof(port)), static_cast<ssize_t>(sizeof(port)));
    close(ready[0]);
    address_.set_port(port);
  }
  ~OtherProcess() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }
  const SocketAddress& address() const { return address_; }

 private:
  SocketAddress address_;
  pid_t pid_ = -1;
};

TEST(RefuseTwinsTest, NamesTheProcessServingTheAddress) {
  OtherProcess twin(*SocketAddress::Parse("127.0.0.1:0"));
  ASSERT_NE(twin.address().port(), 0);
  std::string who = "(pid " + std::to_string(twin.pid()) + ")";
  absl::Status dns = RefuseTwins({twin.address()}, {});
  EXPECT_TRUE(absl::IsFailedPrecondition(dns));
  EXPECT_THAT(std::string(dns.message()), HasSubstr("udp " + twin.address().ToString() + " is already served by"));
  EXPECT_THAT(std::string(dns.message()), HasSubstr(who));
  EXPECT_THAT(std::string(dns.message()), HasSubstr("--takeover"));
  absl::Status metrics = RefuseTwins({}, {twin.address()});
  EXPECT_THAT(std::string(metrics.message()), HasSubstr("HTTP endpoint tcp " + twin.address().ToString()));
  EXPECT_THAT(std::string(metrics.message()), HasSubstr(who));

  // Free addresses, our own sockets and port 0 are fine.
  EXPECT_TRUE(RefuseTwins({*SocketAddress::Parse("127.0.0.1:0")}, {}).ok());
  SocketAddress mine = *SocketAddress::Parse("127.0.0.2:0");
  std::vector<int> fds = BindPair(&mine);
  ASSERT_EQ(fds.size(), 2u);
  EXPECT_TRUE(RefuseTwins({mine}, {mine}).ok());
  for (int fd : fds) close(fd);
}

class VerifySuccessorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ours_ = *SocketAddress::Parse("127.0.0.1:0");
    fds_ = BindPair(&ours_);
    ASSERT_EQ(fds_.size(), 2u);
  }
  void TearDown() override {
    for (int fd : fds_) close(fd);
  }
  control::ReleaseRequest Request(pid_t pid) {
    return {pid, control::protocol::kHandoverProtocol, "test", {ours_}};
  }
  control::PeerCredentials Peer(pid_t pid) { return {true, pid, geteuid(), getegid()}; }

  SocketAddress ours_;
  std::vector<int> fds_;
  const std::string self_ = ExecutableName("self");
};

TEST_F(VerifySuccessorTest, AcceptsAProcessOfOursServingOurAddresses) {
  OtherProcess successor(ours_);
  ASSERT_EQ(successor.address(), ours_);
  EXPECT_TRUE(VerifySuccessor(Peer(successor.pid()), Request(successor.pid()), {ours_}, self_).ok());
  EXPECT_TRUE(OthersServe({ours_}));
  // In another PID namespace (PID 0) the sockets and the user still count.
  EXPECT_TRUE(VerifySuccessor(Peer(0), Request(successor.pid()), {ours_}, self_).ok());
}

TEST_F(VerifySuccessorTest, RefusesEverythingElse) {
  pid_t me = getpid();
  // A stray release: nobody else serves our addresses.
  absl::Status stray = VerifySuccessor(Peer(me), Request(me), {ours_}, self_);
  EXPECT_TRUE(absl::IsPermissionDenied(stray));
  EXPECT_THAT(std::string(stray.message()), HasSubstr("the requester does not serve udp " + ours_.ToString()));
  EXPECT_FALSE(OthersServe({ours_}));

  OtherProcess successor(ours_);
  pid_t pid = successor.pid();
  EXPECT_THAT(std::string(VerifySuccessor(Peer(pid), Request(pid), {ours_}).message()),
              HasSubstr("runs " + self_ + ", not nodedns"));
  control::PeerCredentials stranger = Peer(pid);
  stranger.uid = geteuid() + 1;
  if (geteuid() + 1 != 0) {
    EXPECT_THAT(std::string(VerifySuccessor(stranger, Request(pid), {ours_}, self_).message()),
                HasSubstr("runs as uid"));
  }
  EXPECT_THAT(std::string(VerifySuccessor(control::PeerCredentials{}, Request(pid), {ours_}, self_).message()),
              HasSubstr("credentials are unknown"));
  control::ReleaseRequest old = Request(pid);
  old.protocol = 99;
  EXPECT_THAT(std::string(VerifySuccessor(Peer(pid), old, {ours_}, self_).message()),
              HasSubstr("handover protocol 99"));
  control::ReleaseRequest elsewhere = Request(pid);
  elsewhere.addresses = {*SocketAddress::Parse("127.0.0.9:53")};
  EXPECT_THAT(std::string(VerifySuccessor(Peer(pid), elsewhere, {ours_}, self_).message()),
              HasSubstr("does not serve this nodedns's addresses"));
  // A process that holds none of the sockets, though another one does.
  EXPECT_THAT(std::string(VerifySuccessor(Peer(me), Request(me), {ours_}, self_).message()),
              HasSubstr("no socket of its own is bound there"));
}

}  // namespace
}  // namespace nodedns::app
