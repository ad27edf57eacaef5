#include "lib/control/client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/control/unix_socket.h"
#include "tests/support/daemon_process.h"

namespace nodedns::control {
namespace {

// A control socket that closes its first `cut` connections unread (as a
// daemon with its slots full of idle connections may), then answers.
class CuttingServer {
 public:
  CuttingServer(const std::string& path, int cut) : cut_(cut) {
    UnixSocketOptions o;
    o.path = path;
    auto l = ListenUnix(o);
    EXPECT_TRUE(l.ok()) << l.status();
    fd_ = l->fd;
    thread_ = std::thread([this] { Serve(); });
  }
  ~CuttingServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  int connections() const { return connections_; }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      if (connections_++ >= cut_) {
        char buf[256];
        (void)!read(c, buf, sizeof(buf));
        (void)!write(c, "{\"ok\":true}\n", 12);
      }
      close(c);
    }
  }

  const int cut_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

TEST(ControlClientTest, AConnectionCutBeforeTheRequestIsTriedAgain) {
  testing::TempDir dir;
  CuttingServer server(dir.path() + "/c.sock", 2);
  auto answer = Call(dir.path() + "/c.sock", {{"command", "health"}}, absl::Seconds(5));
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_TRUE(AnswerOk(*answer));
  EXPECT_EQ(server.connections(), 3);
}

TEST(ControlClientTest, GivesUpAfterThreeCuts) {
  testing::TempDir dir;
  CuttingServer server(dir.path() + "/c.sock", 100);
  auto answer = Call(dir.path() + "/c.sock", {{"command", "health"}}, absl::Seconds(5));
  EXPECT_FALSE(answer.ok());
  EXPECT_EQ(server.connections(), 3);
}

TEST(ControlClientTest, AnswersAreReadWithoutTrustingTheirTypes) {
  EXPECT_TRUE(AnswerOk({{"ok", true}}));
  EXPECT_FALSE(AnswerOk({{"ok", "yes"}}));
  EXPECT_FALSE(AnswerOk(nlohmann::json::object()));
  EXPECT_EQ(AnswerInt({{"pid", 42}}, "pid"), 42);
  EXPECT_EQ(AnswerInt({{"pid", "42"}}, "pid"), 0);
  EXPECT_EQ(AnswerError({{"error", "no"}}), "no");
  EXPECT_EQ(AnswerError({{"error", 7}}), "no reason given");
}

}  // namespace
}  // namespace nodedns::control
