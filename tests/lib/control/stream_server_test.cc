#include "lib/control/stream_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "lib/control/unix_socket.h"
#include "lib/server/sockets.h"
#include "tests/support/daemon_process.h"
#include "tests/support/dns_client.h"

namespace nodedns::control {
namespace {

using Clock = std::chrono::steady_clock;

// Reads until EOF or `timeout_ms`; *eof tells which.
std::string ReadUntilClosed(int fd, int timeout_ms, bool* eof) {
  std::string out;
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  *eof = false;
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (poll(&p, 1, std::max(left, 0)) <= 0) break;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) {
      *eof = true;
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// A StreamServer on its own loop thread, as the daemon's control loop runs it.
class StreamServerTest : public ::testing::Test {
 protected:
  void Start(const StreamServerOptions& options, StreamServer::Handler handler) {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    server_ = std::make_unique<StreamServer>(&loop_, options, std::move(handler));
    SocketAddress bound;
    auto fd = server::BindTcpListener(*SocketAddress::Parse("127.0.0.1:0"), &bound);
    ASSERT_TRUE(fd.ok());
    port_ = bound.port();
    ASSERT_TRUE(server_->Start(*fd, /*tcp=*/true).ok());
    StartLoop();
  }
  void StartLoop() {
    uv_async_init(&loop_, &stop_, [](uv_async_t* a) {
      static_cast<StreamServer*>(a->data)->Close();
      uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(static_cast<StreamServerTest*>(a->loop->data)->pause_.get()), nullptr);
    });
    stop_.data = server_.get();
    loop_.data = this;
    // Holds the loop for a moment: what arrives meanwhile is accepted in
    // one batch afterwards.
    uv_async_init(&loop_, pause_.get(), [](uv_async_t* a) {
      auto* self = static_cast<StreamServerTest*>(a->loop->data);
      self->paused_ = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    });
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
  }
  // Stops the loop; afterwards the server's stats may be read.
  void Stop() {
    if (!thread_.joinable()) return;
    uv_async_send(&stop_);
    thread_.join();
    uv_loop_close(&loop_);
  }
  void TearDown() override {
    Stop();
    for (int fd : fds_) close(fd);
  }
  int Connect() {
    int fd = testing::ConnectLoopback(SOCK_STREAM, port_);
    EXPECT_GE(fd, 0);
    fds_.push_back(fd);
    return fd;
  }

  // Blocks the loop for 300 ms, returning once it is blocked.
  void PauseLoop() {
    paused_ = false;
    uv_async_send(pause_.get());
    while (!paused_) std::this_thread::yield();
  }

  uv_loop_t loop_;
  uv_async_t stop_;
  std::unique_ptr<uv_async_t> pause_ = std::make_unique<uv_async_t>();
  std::atomic<bool> paused_{false};
  std::thread thread_;
  std::unique_ptr<StreamServer> server_;
  uint16_t port_ = 0;
  std::vector<int> fds_;
};

// Sends `request` on `fd` and returns what comes back before the server
// closes it (5 s at most); *eof tells whether it closed.
std::string Exchange(int fd, const std::string& request, bool* eof) {
  EXPECT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  return ReadUntilClosed(fd, 5000, eof);
}

StreamServer::Handler Echo() {
  return [](std::string_view request, const PeerCredentials&, StreamServer::Respond respond) {
    respond("echo " + std::string(request));
  };
}

TEST_F(StreamServerTest, WhenFullTheOldestIdleConnectionMakesRoom) {
  StreamServerOptions o;
  o.max_connections = 4;
  o.request_timeout = absl::Seconds(30);
  Start(o, Echo());
  std::vector<int> idle;
  for (int i = 0; i < 4; ++i) idle.push_back(Connect());
  int prober = Connect();
  bool eof = false;
  EXPECT_EQ(Exchange(prober, "ping\n", &eof), "echo ping\n");
  EXPECT_TRUE(eof);
  // The oldest idle one was cut for it; the others are still open.
  ReadUntilClosed(idle[0], 5000, &eof);
  EXPECT_TRUE(eof);
  for (int i = 1; i < 4; ++i) {
    ReadUntilClosed(idle[i], 50, &eof);
    EXPECT_FALSE(eof) << i;
  }
  // Held idle connections never keep a prober out, however many there are.
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 4; ++i) Connect();
    EXPECT_EQ(Exchange(Connect(), "again\n", &eof), "echo again\n") << round;
  }
  Stop();
  EXPECT_EQ(server_->stats().accepted, 4u + 1 + 20 * 5);
  EXPECT_GE(server_->stats().idle_cut, 1u + 20 * 4);  // at least four cut per round
  EXPECT_EQ(server_->stats().refused, 0u);
}

TEST_F(StreamServerTest, AConnectionWhoseRequestWaitsIsNotCutForLaterOnes) {
  StreamServerOptions o;
  o.max_connections = 4;
  o.request_timeout = absl::Seconds(30);
  Start(o, Echo());
  // The prober connects and sends, then a flood of idle connections comes
  // before the loop has read anything: all are accepted in one batch.
  PauseLoop();
  int prober = Connect();
  ASSERT_EQ(write(prober, "ping\n", 5), 5);
  for (int i = 0; i < 12; ++i) Connect();
  bool eof = false;
  EXPECT_EQ(ReadUntilClosed(prober, 5000, &eof), "echo ping\n");
  Stop();
  EXPECT_GE(server_->stats().idle_cut, 9u);
}

TEST_F(StreamServerTest, AnIdleConnectionIsCutAtTheRequestDeadline) {
  StreamServerOptions o;
  o.request_timeout = absl::Milliseconds(300);
  Start(o, Echo());
  auto t0 = Clock::now();
  bool eof = false;
  EXPECT_EQ(Exchange(Connect(), "no newline yet", &eof), "");
  EXPECT_TRUE(eof);
  EXPECT_GE(Clock::now() - t0, std::chrono::milliseconds(250));
  EXPECT_LT(Clock::now() - t0, std::chrono::milliseconds(3000));
  Stop();
  EXPECT_EQ(server_->stats().timed_out, 1u);
}

TEST_F(StreamServerTest, WhenEverySlotIsBeingAnsweredANewConnectionIsClosed) {
  StreamServerOptions o;
  o.max_connections = 2;
  absl::Mutex mu;
  int pending = 0;
  Start(o, [&](std::string_view, const PeerCredentials&, StreamServer::Respond) {
    absl::MutexLock lock(&mu);
    ++pending;  // never answered: a slow snapshot, say
  });
  for (int i = 0; i < 2; ++i) ASSERT_EQ(write(Connect(), "wait\n", 5), 5);
  {
    absl::MutexLock lock(&mu);
    auto both = [&pending]() { return pending == 2; };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&both), absl::Seconds(5)));
  }
  bool eof = false;
  EXPECT_EQ(ReadUntilClosed(Connect(), 5000, &eof), "");
  EXPECT_TRUE(eof);
  Stop();
  EXPECT_EQ(server_->stats().refused, 1u);
  EXPECT_EQ(server_->stats().idle_cut, 0u);
}

TEST_F(StreamServerTest, AThrowingHandlerGetsTheInternalErrorAnswer) {
  StreamServerOptions o;
  o.internal_error = "sorry\n";
  Start(o, [](std::string_view, const PeerCredentials&, StreamServer::Respond) {
    throw std::runtime_error("boom");
  });
  bool eof = false;
  EXPECT_EQ(Exchange(Connect(), "x\n", &eof), "sorry\n");
  Stop();
  EXPECT_EQ(server_->stats().internal_errors, 1u);
}

TEST_F(StreamServerTest, OversizedRequestsGetTheOversizeAnswer) {
  StreamServerOptions o;
  o.max_request = 16;
  o.oversize = "too large\n";
  Start(o, Echo());
  bool eof = false;
  EXPECT_EQ(Exchange(Connect(), std::string(100, 'x'), &eof), "too large\n");
  Stop();
  EXPECT_EQ(server_->stats().oversize, 1u);
}

TEST_F(StreamServerTest, UnixPeersComeWithTheirCredentials) {
  testing::TempDir dir;
  UnixSocketOptions uo;
  uo.path = dir.path() + "/s.sock";
  auto l = ListenUnix(uo);
  ASSERT_TRUE(l.ok()) << l.status();
  ASSERT_EQ(uv_loop_init(&loop_), 0);
  absl::Mutex mu;
  PeerCredentials seen;
  server_ = std::make_unique<StreamServer>(
      &loop_, StreamServerOptions{}, [&](std::string_view, const PeerCredentials& peer, StreamServer::Respond r) {
        absl::MutexLock lock(&mu);
        seen = peer;
        r("ok\n");
      });
  ASSERT_TRUE(server_->Start(l->fd, /*tcp=*/false).ok());
  StartLoop();
  auto fd = ConnectUnix(uo.path);
  ASSERT_TRUE(fd.ok());
  fds_.push_back(*fd);
  bool eof = false;
  EXPECT_EQ(Exchange(*fd, "who\n", &eof), "ok\n");
  absl::MutexLock lock(&mu);
  EXPECT_TRUE(seen.known);
  EXPECT_EQ(seen.pid, getpid());
  EXPECT_EQ(seen.uid, geteuid());
}

}  // namespace
}  // namespace nodedns::control
