#ifndef NODEDNS_TESTS_LIB_SERVER_LISTENER_HARNESS_H_
#define NODEDNS_TESTS_LIB_SERVER_LISTENER_HARNESS_H_

// What the listener tests share: a libuv loop run by the test thread, a real
// Resolver whose only zone (".") goes to an upstream the test answers by
// hand, loopback sockets bound on port 0, and client helpers.
//
// Synchronous answers come from queries with opcode NOTIFY (the resolver
// answers NOTIMP at once, without the cache or the upstream); asynchronous
// ones from A queries, which wait in StubUpstream until the test answers.

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "lib/cache/cache.h"
#include "lib/common/socket_address.h"
#include "lib/common/timer_queue.h"
#include "lib/dns/constants.h"
#include "lib/dns/message.h"
#include "lib/resolver/resolver.h"
#include "lib/server/sockets.h"
#include "lib/upstream/router.h"
#include "lib/upstream/upstream.h"
#include "tests/support/all_counters.h"
#include "tests/support/dns_client.h"
#include "tests/support/fake_clock.h"

namespace nodedns::server::listener_test {

// A healthy zone whose queries wait until the test answers them.
class StubUpstream final : public upstream::Upstream {
 public:
  upstream::SendResult Send(absl::Span<const uint8_t> query, upstream::Priority, upstream::FlowId,
                            upstream::Callback done) override {
    sent.push_back({std::vector<uint8_t>(query.begin(), query.end()), std::move(done)});
    return upstream::SendResult::kSent;
  }
  upstream::Health health() const override { return upstream::Health::kHealthy; }
  absl::Duration client_timeout() const override { return absl::Hours(1); }
  void ReportClientTimeout() override {}
  absl::Time last_good_answer() const override { return absl::InfinitePast(); }
  absl::Time newest_prompt_send() const override { return absl::InfinitePast(); }
  bool recently_unhealthy() const override { return false; }

  // Answers the query sent `index`-th among those still waiting with
  // `records` A records (10.0.0.7, 10.0.0.8, ...).
  void Answer(size_t index = 0, uint32_t ttl = 300, int records = 1) {
    ASSERT_LT(index, sent.size());
    Sent s = std::move(sent[index]);
    sent.erase(sent.begin() + static_cast<std::ptrdiff_t>(index));
    auto q = dns::ParseMessage(s.query);
    ASSERT_TRUE(q.ok()) << q.status();
    dns::Message r = *q;
    r.flags |= dns::kFlagQR | dns::kFlagRA;
    for (int i = 0; i < records; ++i) {
      std::string ip("\x0a\x00\x00\x07", 4);
      ip[3] = static_cast<char>(7 + i);
      ip[2] = static_cast<char>((7 + i) >> 8);
      r.answers.push_back({q->questions[0].name, dns::kTypeA, dns::kClassIN, ttl, ip});
    }
    auto wire = dns::WriteMessage(r);
    ASSERT_TRUE(wire.ok());
    s.done(absl::OkStatus(), *wire);
  }

  struct Sent {
    std::vector<uint8_t> query;
    upstream::Callback done;
  };
  std::deque<Sent> sent;
};

// A query the resolver answers NOTIMP at once (opcode NOTIFY).
inline std::vector<uint8_t> NotifyQuery(uint16_t id) {
  nodedns::testing::QueryOptions o;
  o.id = id;
  auto q = nodedns::testing::MakeQuery("sync.example", dns::kTypeSOA, o);
  q[2] |= 0x20;  // opcode 4
  return q;
}

// A query that waits for StubUpstream.
inline std::vector<uint8_t> AQuery(const std::string& name, uint16_t id) {
  nodedns::testing::QueryOptions o;
  o.id = id;
  return nodedns::testing::MakeQuery(name, dns::kTypeA, o);
}

inline std::string Frame(const std::vector<uint8_t>& message) {
  std::string out;
  out.push_back(static_cast<char>(message.size() >> 8));
  out.push_back(static_cast<char>(message.size() & 0xff));
  out.append(message.begin(), message.end());
  return out;
}

inline uint16_t IdOf(const std::vector<uint8_t>& message) {
  return message.size() >= 2 ? static_cast<uint16_t>(message[0] << 8 | message[1]) : 0;
}

class ListenerHarness : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    loop_initialized_ = true;
    auto cache = cache::Cache::Create(cache::CacheOptions{});
    ASSERT_TRUE(cache.ok());
    cache_ = std::move(*cache);
    zone_.name = ".";
    zone_.upstream = &upstream_;
    router_.AddZone(std::string(1, '\0'), &zone_);
    resolver_ = std::make_unique<resolver::Resolver>(resolver::ResolverOptions{}, cache_.get(), &router_, &clock_,
                                                     &timers_, &counters_);
    auto bound = BindListeners({*SocketAddress::Parse("127.0.0.1:0")}, 1, 1);
    ASSERT_TRUE(bound.ok()) << bound.status();
    ASSERT_EQ(bound->size(), 1u);
    port_ = (*bound)[0].address.port();
    udp_fd_ = (*bound)[0].udp_fds[0];
    tcp_fd_ = (*bound)[0].tcp_fds[0];
  }

  // Closes the listener's handles (CloseHandles), runs the loop until every
  // handle is gone, and checks that none is left behind.
  void TearDown() override {
    CloseHandles();
    for (int fd : clients_) close(fd);
    if (!loop_initialized_) return;
    EXPECT_TRUE(RunUntil([&] { return !uv_loop_alive(&loop_); })) << "handles still active after closing";
    EXPECT_EQ(uv_loop_close(&loop_), 0) << "handles left open on the loop";
  }
  virtual void CloseHandles() = 0;

  // Runs the loop until `done` or the timeout (real time: libuv's sockets
  // and timers are real).
  bool RunUntil(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(5)) {
    absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      if (done()) return true;
      if (absl::Now() > deadline) return false;
      poll(nullptr, 0, 1);
    }
  }
  // Runs the loop for `d` of real time.
  void RunFor(absl::Duration d) {
    RunUntil([] { return false; }, d);
  }

  // A client socket of `type` connected to the listener, non-blocking.
  int Connect(int type) {
    int fd = nodedns::testing::ConnectLoopback(type, port_);
    EXPECT_GE(fd, 0) << "connect to 127.0.0.1:" << port_;
    if (fd >= 0) {
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
      clients_.push_back(fd);
    }
    return fd;
  }
  // Sends all of `data`, running the loop while the socket's buffer is full
  // (the listener may have to read before more fits).
  void SendAll(int fd, const std::string& data) {
    size_t off = 0;
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (off < data.size() || data.empty()) {
      ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        if (absl::Now() > deadline) {
          ADD_FAILURE() << "send: no room within 10 s";
          return;
        }
        uv_run(&loop_, UV_RUN_NOWAIT);
        poll(nullptr, 0, 1);
        continue;
      }
      if (n < 0 || (n == 0 && !data.empty())) {
        ADD_FAILURE() << "send: " << strerror(errno);
        return;
      }
      off += static_cast<size_t>(n);
      if (data.empty()) return;  // an empty datagram
    }
  }
  void SendAll(int fd, const std::vector<uint8_t>& data) { SendAll(fd, std::string(data.begin(), data.end())); }

  uv_loop_t loop_;
  bool loop_initialized_ = false;
  FakeClock clock_;
  TimerQueue timers_;
  AllCounters counters_;
  std::unique_ptr<cache::Cache> cache_;
  StubUpstream upstream_;
  upstream::Zone zone_;
  upstream::Router router_;
  std::unique_ptr<resolver::Resolver> resolver_;
  uint16_t port_ = 0;
  int udp_fd_ = -1;
  int tcp_fd_ = -1;
  std::vector<int> clients_;
};

// A TCP client that collects framed answers and notices the peer's close.
struct TcpClient {
  int fd = -1;
  std::string buffer;
  bool closed = false;  // EOF or reset

  // Reads whatever has arrived, and notes EOF or a reset.
  void Pump() {
    char buf[65536];
    for (;;) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n > 0) {
        buffer.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) closed = true;
      return;
    }
  }
  // Complete frames received so far.
  std::vector<std::vector<uint8_t>> Frames() const {
    std::vector<std::vector<uint8_t>> out;
    size_t pos = 0;
    while (buffer.size() - pos >= 2) {
      size_t len = static_cast<uint8_t>(buffer[pos]) << 8 | static_cast<uint8_t>(buffer[pos + 1]);
      if (buffer.size() - pos - 2 < len) break;
      out.emplace_back(buffer.begin() + static_cast<std::ptrdiff_t>(pos + 2),
                       buffer.begin() + static_cast<std::ptrdiff_t>(pos + 2 + len));
      pos += 2 + len;
    }
    return out;
  }
};

}  // namespace nodedns::server::listener_test

#endif  // NODEDNS_TESTS_LIB_SERVER_LISTENER_HARNESS_H_
