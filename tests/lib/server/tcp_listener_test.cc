#include "lib/server/tcp_listener.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <iterator>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/server/tcp_connection.h"
#include "tests/lib/server/listener_harness.h"
#include "tests/support/log_capture.h"

namespace nodedns::server::listener_test {
namespace {

class TcpListenerTest : public ListenerHarness {
 protected:
  void SetUp() override {
    ListenerHarness::SetUp();
    if (HasFatalFailure()) return;
    close(udp_fd_);
  }
  void Start(TcpOptions options = TcpOptions()) {
    budget_ = std::make_unique<TcpBudget>(options.memory_budget);
    listener_ = std::make_unique<TcpListener>(&loop_, tcp_fd_, resolver_.get(), &counters_, options, &clock_, &timers_,
                                              budget_.get());
    ASSERT_TRUE(listener_->Start().ok());
  }
  void CloseHandles() override {
    if (listener_) {
      listener_->CloseAll();
    } else if (tcp_fd_ >= 0) {
      close(tcp_fd_);
    }
  }

  // A connected client, accepted by the listener.
  TcpClient Client() {
    TcpClient c;
    c.fd = Connect(SOCK_STREAM);
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    uint64_t accepted = counters_.tcp_accepted.load() + counters_.tcp_rejected.load();
    EXPECT_TRUE(RunUntil([&] { return counters_.tcp_accepted.load() + counters_.tcp_rejected.load() > accepted; }));
    return c;
  }
  // Runs the loop until `c` holds `n` frames; returns them.
  std::vector<std::vector<uint8_t>> Await(TcpClient& c, size_t n) {
    RunUntil([&] {
      c.Pump();
      return c.Frames().size() >= n || c.closed;
    });
    return c.Frames();
  }
  // Moves the fake clock and runs the timers due (the listener's sweep).
  // In steps of 10 ms, as the worker's timer would fire.
  void Advance(absl::Duration d) {
    while (d > absl::ZeroDuration()) {
      absl::Duration step = std::min(d, absl::Milliseconds(10));
      clock_.Advance(step);
      d -= step;
      timers_.RunDue(clock_.Now());
    }
    uv_run(&loop_, UV_RUN_NOWAIT);
  }
  // Runs the loop until the listener holds `n` bytes of input beyond the
  // connections' fixed cost (one connection with a partial frame).
  void AwaitHeld(size_t n) {
    ASSERT_TRUE(RunUntil([&] {
      return listener_->held_bytes() >= TcpListener::kConnectionCost * static_cast<int64_t>(listener_->connections()) +
                                            static_cast<int64_t>(n);
    })) << "held " << listener_->held_bytes();
  }
  bool AwaitClosed(TcpClient& c, absl::Duration timeout = absl::Seconds(5)) {
    return RunUntil(
        [&] {
          c.Pump();
          return c.closed;
        },
        timeout);
  }

  std::unique_ptr<TcpBudget> budget_;
  std::unique_ptr<TcpListener> listener_;
};

TEST_F(TcpListenerTest, AnswersAFramedQuery) {
  Start();
  TcpClient c = Client();
  SendAll(c.fd, Frame(NotifyQuery(0x1111)));
  auto frames = Await(c, 1);
  ASSERT_EQ(frames.size(), 1u);
  auto m = dns::ParseMessage(frames[0]);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->id, 0x1111);
  EXPECT_EQ(m->rcode(), dns::kNotImp);
  EXPECT_EQ(counters_.queries_tcp.load(), 1u);
  EXPECT_EQ(counters_.tcp_accepted.load(), 1u);
  EXPECT_EQ(listener_->connections(), 1u);
  EXPECT_FALSE(c.closed);  // the connection stays open for more queries
}

TEST_F(TcpListenerTest, TwoQueriesInOneSegment) {
  Start();
  TcpClient c = Client();
  SendAll(c.fd, Frame(NotifyQuery(1)) + Frame(NotifyQuery(2)));
  auto frames = Await(c, 2);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(IdOf(frames[0]), 1);
  EXPECT_EQ(IdOf(frames[1]), 2);
}

TEST_F(TcpListenerTest, AFrameSplitAcrossSegments) {
  Start();
  TcpClient c = Client();
  std::string frame = Frame(NotifyQuery(0x2222));
  // The length's first octet, its second, half the message, the rest and
  // the start of the next frame.
  std::string next = Frame(NotifyQuery(0x3333));
  const std::string pieces[] = {frame.substr(0, 1), frame.substr(1, 1), frame.substr(2, 10),
                                frame.substr(12) + next.substr(0, 3), next.substr(3)};
  for (size_t i = 0; i < std::size(pieces); ++i) {
    SendAll(c.fd, pieces[i]);
    RunFor(absl::Milliseconds(10));
    c.Pump();
    size_t want = i < 3 ? 0 : i == 3 ? 1 : 2;
    if (c.Frames().size() < want) Await(c, want);
    EXPECT_EQ(c.Frames().size(), want) << "after piece " << i;
  }
  auto frames = c.Frames();
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(IdOf(frames[0]), 0x2222);
  EXPECT_EQ(IdOf(frames[1]), 0x3333);
}

TEST_F(TcpListenerTest, LargeFramesUpToTheMaximum) {
  Start();
  TcpClient c = Client();
  // Frames longer than the first read buffer (4 KiB) and the largest a
  // 2-octet length allows; the opcode is read before anything else, so the
  // padding does not matter.
  std::vector<uint8_t> big = NotifyQuery(0x4444);
  big.resize(6000, 0);
  std::vector<uint8_t> max = NotifyQuery(0x5555);
  max.resize(65535, 0);
  SendAll(c.fd, Frame(big) + Frame(max) + Frame(NotifyQuery(0x6666)));
  auto frames = Await(c, 3);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(IdOf(frames[0]), 0x4444);
  EXPECT_EQ(IdOf(frames[1]), 0x5555);
  EXPECT_EQ(IdOf(frames[2]), 0x6666);
  EXPECT_EQ(counters_.tcp_bad_frames.load(), 0u);
}

TEST_F(TcpListenerTest, AFrameShorterThanAHeaderClosesTheConnection) {
  for (size_t len : {0, 1, 11}) {
    SCOPED_TRACE(len);
    if (!listener_) Start();
    TcpClient c = Client();
    std::string frame = {static_cast<char>(0), static_cast<char>(len)};
    frame.append(len, '\0');
    SendAll(c.fd, frame);
    EXPECT_TRUE(AwaitClosed(c));
    EXPECT_TRUE(c.Frames().empty());
  }
  EXPECT_EQ(counters_.tcp_bad_frames.load(), 3u);
  EXPECT_EQ(counters_.queries_tcp.load(), 0u);
  EXPECT_TRUE(RunUntil([&] { return listener_->connections() == 0; }));
}

TEST_F(TcpListenerTest, PipelinedQueriesAreAnsweredAsTheyComplete) {
  Start();
  TcpClient c = Client();
  SendAll(c.fd, Frame(AQuery("a.example", 1)) + Frame(AQuery("b.example", 2)) + Frame(NotifyQuery(3)));
  // The synchronous answer does not wait for the two before it.
  auto frames = Await(c, 1);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(IdOf(frames[0]), 3);
  ASSERT_EQ(upstream_.sent.size(), 2u);
  upstream_.Answer(1);  // b first
  frames = Await(c, 2);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(IdOf(frames[1]), 2);
  upstream_.Answer(0);
  frames = Await(c, 3);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(IdOf(frames[2]), 1);
  EXPECT_EQ(dns::ParseMessage(frames[2])->answers.size(), 1u);
}

TEST_F(TcpListenerTest, ReadingPausesAtThePipelineCap) {
  TcpOptions o;
  o.max_pipeline = 2;
  Start(o);
  TcpClient c = Client();
  std::string all;
  for (int i = 0; i < 4; ++i) all += Frame(AQuery("q" + std::to_string(i) + ".example", static_cast<uint16_t>(i)));
  SendAll(c.fd, all);
  ASSERT_TRUE(RunUntil([&] { return upstream_.sent.size() == 2; }));
  RunFor(absl::Milliseconds(20));
  EXPECT_EQ(upstream_.sent.size(), 2u) << "more than max_pipeline queries in flight";
  EXPECT_EQ(counters_.queries_tcp.load(), 2u);
  // One answer makes room for one more.
  upstream_.Answer(0);
  ASSERT_TRUE(RunUntil([&] { return upstream_.sent.size() == 2 && counters_.queries_tcp.load() == 3; }));
  upstream_.Answer(0);
  upstream_.Answer(0);
  ASSERT_TRUE(RunUntil([&] { return counters_.queries_tcp.load() == 4; }));
  upstream_.Answer(0);
  auto frames = Await(c, 4);
  ASSERT_EQ(frames.size(), 4u);
  std::set<uint16_t> ids;
  for (const auto& f : frames) ids.insert(IdOf(f));
  EXPECT_EQ(ids, (std::set<uint16_t>{0, 1, 2, 3}));
}

TEST_F(TcpListenerTest, IdleConnectionsAreClosed) {
  TcpOptions o;
  o.idle_timeout = absl::Seconds(10);
  Start(o);
  TcpClient idle = Client();
  Advance(absl::Milliseconds(9900));
  idle.Pump();
  EXPECT_FALSE(idle.closed);
  Advance(absl::Milliseconds(300));  // the sweep runs every 250 ms
  EXPECT_TRUE(AwaitClosed(idle));
  EXPECT_EQ(counters_.tcp_idle_closed.load(), 1u);
  EXPECT_EQ(listener_->connections(), 0u);
  EXPECT_EQ(listener_->held_bytes(), 0);
  EXPECT_EQ(budget_->used(), 0);
}

TEST_F(TcpListenerTest, AQueryInFlightKeepsTheConnectionPastTheIdleTimeout) {
  TcpOptions o;
  o.idle_timeout = absl::Seconds(1);
  Start(o);
  TcpClient c = Client();
  SendAll(c.fd, Frame(AQuery("slow.example", 7)));
  ASSERT_TRUE(RunUntil([&] { return upstream_.sent.size() == 1; }));
  Advance(absl::Seconds(5));
  c.Pump();
  EXPECT_FALSE(c.closed);
  EXPECT_EQ(counters_.tcp_idle_closed.load(), 0u);
  upstream_.Answer();
  auto frames = Await(c, 1);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(IdOf(frames[0]), 7);
  // Then idle again, counted from the answer the client took: closed.
  Advance(absl::Milliseconds(900));
  c.Pump();
  EXPECT_FALSE(c.closed);
  Advance(absl::Milliseconds(300));
  EXPECT_TRUE(AwaitClosed(c));
  EXPECT_EQ(counters_.tcp_idle_closed.load(), 1u);
}

// Slowloris: bytes that trickle in neither extend the frame's deadline nor
// count as activity.
TEST_F(TcpListenerTest, AFrameMustArriveWholeWithinTheFrameTimeout) {
  TcpOptions o;
  o.frame_timeout = absl::Seconds(2);
  o.idle_timeout = absl::Seconds(60);
  Start(o);
  TcpClient c = Client();
  std::string frame = Frame(NotifyQuery(1));
  // A whole frame in 1.5 s is fine...
  SendAll(c.fd, frame.substr(0, 1));
  AwaitHeld(1);
  Advance(absl::Milliseconds(1000));
  SendAll(c.fd, frame.substr(1, 3));
  AwaitHeld(4);
  Advance(absl::Milliseconds(500));
  SendAll(c.fd, frame.substr(4) + frame.substr(0, 1));  // and the next one's first byte
  ASSERT_EQ(Await(c, 1).size(), 1u);
  AwaitHeld(1);
  // ...the next one's deadline runs from its own first byte, one byte a
  // second does not move it.
  for (int i = 1; i < 4; ++i) {
    Advance(absl::Milliseconds(500));
    SendAll(c.fd, frame.substr(static_cast<size_t>(i), 1));
    AwaitHeld(static_cast<size_t>(i) + 1);
    c.Pump();
    ASSERT_FALSE(c.closed) << i;
  }
  Advance(absl::Milliseconds(499));
  c.Pump();
  EXPECT_FALSE(c.closed);
  Advance(absl::Milliseconds(260));  // the sweep runs every 250 ms
  EXPECT_TRUE(AwaitClosed(c));
  EXPECT_EQ(counters_.tcp_frame_deadline_closed.load(), 1u);
  EXPECT_EQ(counters_.tcp_idle_closed.load(), 0u);
}

TEST_F(TcpListenerTest, PartialFramesAreNotActivity) {
  TcpOptions o;
  o.frame_timeout = absl::Seconds(600);  // only the idle timeout here
  o.idle_timeout = absl::Seconds(10);
  Start(o);
  TcpClient c = Client();
  std::string frame = Frame(NotifyQuery(1));
  for (size_t i = 0; i < 9; ++i) {
    SendAll(c.fd, frame.substr(i, 1));
    AwaitHeld(i + 1);
    Advance(absl::Seconds(1));
  }
  c.Pump();
  EXPECT_FALSE(c.closed);
  Advance(absl::Milliseconds(1260));
  EXPECT_TRUE(AwaitClosed(c));
  EXPECT_EQ(counters_.tcp_idle_closed.load(), 1u);
}

TEST_F(TcpListenerTest, ANewConnectionAtTheLimitCutsTheLongestIdle) {
  TcpOptions o;
  o.max_connections = 2;
  Start(o);
  TcpClient a = Client();
  TcpClient b = Client();
  Advance(absl::Seconds(1));
  // b trickles a frame (no activity), a asks a query (activity): b is idle
  // the longest.
  SendAll(b.fd, Frame(NotifyQuery(9)).substr(0, 3));
  AwaitHeld(3);
  SendAll(a.fd, Frame(NotifyQuery(1)));
  ASSERT_EQ(Await(a, 1).size(), 1u);
  Advance(absl::Seconds(1));
  TcpClient c = Client();
  EXPECT_TRUE(AwaitClosed(b));
  EXPECT_EQ(counters_.tcp_idle_cut.load(), 1u);
  EXPECT_EQ(counters_.tcp_rejected.load(), 0u);
  EXPECT_EQ(counters_.tcp_accepted.load(), 3u);
  SendAll(c.fd, Frame(NotifyQuery(3)));
  ASSERT_EQ(Await(c, 1).size(), 1u);
  SendAll(a.fd, Frame(NotifyQuery(2)));
  EXPECT_EQ(Await(a, 2).size(), 2u);
  EXPECT_FALSE(a.closed);
}

TEST_F(TcpListenerTest, AtTheLimitBusyConnectionsAreNotCut) {
  TcpOptions o;
  o.max_connections = 1;
  Start(o);
  // A query in flight: busy.
  TcpClient busy = Client();
  SendAll(busy.fd, Frame(AQuery("busy.example", 1)));
  ASSERT_TRUE(RunUntil([&] { return upstream_.sent.size() == 1; }));
  Advance(absl::Seconds(5));
  TcpClient over = Client();
  EXPECT_TRUE(AwaitClosed(over));
  EXPECT_EQ(counters_.tcp_rejected.load(), 1u);
  EXPECT_EQ(counters_.tcp_idle_cut.load(), 0u);
  upstream_.Answer();
  ASSERT_EQ(Await(busy, 1).size(), 1u);

  // A frame that started arriving just now: its client is sending it.
  SendAll(busy.fd, Frame(NotifyQuery(2)).substr(0, 5));
  AwaitHeld(5);
  TcpClient over2 = Client();
  EXPECT_TRUE(AwaitClosed(over2));
  EXPECT_EQ(counters_.tcp_rejected.load(), 2u);
  // The same frame a second later: cut.
  Advance(absl::Seconds(1));
  TcpClient later = Client();
  EXPECT_TRUE(AwaitClosed(busy));
  EXPECT_EQ(counters_.tcp_idle_cut.load(), 1u);
  SendAll(later.fd, Frame(NotifyQuery(3)));
  ASSERT_EQ(Await(later, 1).size(), 1u);
}

TEST_F(TcpListenerTest, AClientThatStopsSendingGetsItsAnswersThenAClose) {
  Start();
  TcpClient c = Client();
  SendAll(c.fd, Frame(AQuery("eof.example", 5)) + Frame(NotifyQuery(6)));
  shutdown(c.fd, SHUT_WR);
  ASSERT_TRUE(RunUntil([&] { return upstream_.sent.size() == 1; }));
  RunFor(absl::Milliseconds(20));
  c.Pump();
  EXPECT_FALSE(c.closed) << "closed with a query in flight";
  upstream_.Answer();
  EXPECT_TRUE(AwaitClosed(c));
  auto frames = c.Frames();
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(IdOf(frames[0]), 6);
  EXPECT_EQ(IdOf(frames[1]), 5);
}

TEST_F(TcpListenerTest, AnAnswerForAClosedConnectionIsCounted) {
  Start();
  TcpClient c = Client();
  // A query in flight, then a bad frame: the listener closes the connection.
  SendAll(c.fd, Frame(AQuery("gone.example", 8)) + std::string("\0\3abc", 5));
  EXPECT_TRUE(AwaitClosed(c));
  ASSERT_EQ(upstream_.sent.size(), 1u);
  upstream_.Answer();
  EXPECT_EQ(counters_.tcp_replies_dropped.load(), 1u);
}

TEST_F(TcpListenerTest, StopAcceptingFinishesWhatIsInFlight) {
  Start();
  TcpClient busy = Client();
  TcpClient idle = Client();
  SendAll(busy.fd, Frame(AQuery("busy.example", 1)));
  ASSERT_TRUE(RunUntil([&] { return upstream_.sent.size() == 1; }));

  listener_->StopAccepting();
  EXPECT_TRUE(AwaitClosed(idle));  // nothing in flight: closed
  RunFor(absl::Milliseconds(20));
  busy.Pump();
  EXPECT_FALSE(busy.closed);
  // New queries on an open connection are not started.
  SendAll(busy.fd, Frame(NotifyQuery(2)));
  RunFor(absl::Milliseconds(20));
  upstream_.Answer();
  EXPECT_TRUE(AwaitClosed(busy));
  auto frames = busy.Frames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(IdOf(frames[0]), 1);
  // And no new connection is accepted.
  int fd = nodedns::testing::ConnectLoopback(SOCK_STREAM, port_);
  if (fd >= 0) close(fd);
  EXPECT_LT(fd, 0);
  EXPECT_EQ(counters_.tcp_accepted.load(), 2u);
}

TEST_F(TcpListenerTest, SampledAnswersAreLoggedWithTheClientsAddress) {
  nodedns::testing::LogCapture log;
  QueryLog query_log;
  query_log.set_sample(1);
  Start();
  listener_->set_query_log(&query_log);
  TcpClient c = Client();
  SendAll(c.fd, Frame(AQuery("logged.example", 1)));
  ASSERT_TRUE(RunUntil([&] { return upstream_.sent.size() == 1; }));
  upstream_.Answer();
  ASSERT_EQ(Await(c, 1).size(), 1u);
  sockaddr_storage local{};
  socklen_t len = sizeof(local);
  getsockname(c.fd, reinterpret_cast<sockaddr*>(&local), &len);
  std::string client = SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&local)).ToString();
  auto lines = log.lines();
  ASSERT_EQ(lines.size(), 1u) << log.text();
  EXPECT_THAT(lines[0], ::testing::StartsWith("query client=" + client + " proto=tcp name=logged.example. type=A"));
  listener_->set_query_log(nullptr);
}

// A client that asks and never reads must not hold the listener's shutdown
// open: CloseAll ends every connection, even one whose answers cannot be
// written.
TEST_F(TcpListenerTest, CloseAllEndsEvenIfAClientNeverReads) {
  TcpOptions o;
  o.max_write_queue = size_t{256} << 20;
  Start(o);
  // A large answer in the cache (200 records, about 3 KB).
  TcpClient warm = Client();
  SendAll(warm.fd, Frame(AQuery("big.example", 1)));
  ASSERT_TRUE(RunUntil([&] { return upstream_.sent.size() == 1; }));
  upstream_.Answer(0, 300, 200);
  ASSERT_EQ(Await(warm, 1).size(), 1u);

  // A small receive window, and no reads.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  clients_.push_back(fd);
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port_);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  constexpr int kQueries = 3000;  // about 9 MB of answers
  std::string all;
  for (int i = 0; i < kQueries; ++i) all += Frame(AQuery("big.example", static_cast<uint16_t>(i)));
  SendAll(fd, all);
  ASSERT_TRUE(RunUntil([&] { return counters_.queries_tcp.load() == kQueries + 1u; }));
  RunFor(absl::Milliseconds(50));

  listener_->CloseAll();
  EXPECT_TRUE(RunUntil([&] { return !uv_loop_alive(&loop_); }, absl::Seconds(3)))
      << "the listener's handles stay open while a client does not read";
  EXPECT_EQ(listener_->connections(), 0u);
}

// A client that asks and never reads (a small receive window): its
// connection stops reading once max_write_queue bytes of answers wait,
// although every answer is a cache hit, and holds no more than that.
class NeverReadingTest : public TcpListenerTest {
 protected:
  // Puts a 3 KB answer for big.example in the cache.
  void Warm() {
    TcpClient warm = Client();
    SendAll(warm.fd, Frame(AQuery("big.example", 1)));
    ASSERT_TRUE(RunUntil([&] { return upstream_.sent.size() == 1; }));
    upstream_.Answer(0, 300, 200);
    ASSERT_EQ(Await(warm, 1).size(), 1u);
  }
  int NeverReader() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_GE(fd, 0);
    clients_.push_back(fd);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port_);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
  }
  // Sends what fits of `data` from `*off` on, running the loop, until
  // nothing more was sent for `quiet` (the listener stopped reading, or all
  // was sent).
  void SendWhatFits(int fd, const std::string& data, size_t* off, absl::Duration quiet = absl::Milliseconds(300)) {
    absl::Time last = absl::Now();
    while (absl::Now() - last < quiet) {
      ssize_t n = *off < data.size() ? send(fd, data.data() + *off, data.size() - *off, MSG_NOSIGNAL) : 0;
      if (n > 0) {
        *off += static_cast<size_t>(n);
        last = absl::Now();
      }
      uv_run(&loop_, UV_RUN_NOWAIT);
      poll(nullptr, 0, 1);
    }
  }
  static std::string Queries(int n) {
    std::string all;
    for (int i = 0; i < n; ++i) all += Frame(AQuery("big.example", static_cast<uint16_t>(i)));
    return all;
  }
};

TEST_F(NeverReadingTest, ReadingPausesWhenTheQueueIsFullCacheHitsIncluded) {
  TcpOptions o;
  o.max_write_queue = 16 << 10;
  Start(o);
  Warm();
  int fd = NeverReader();
  constexpr int kQueries = 4000;  // 12 MB of answers: more than the kernel's buffers take
  std::string all = Queries(kQueries);
  size_t off = 0;
  SendWhatFits(fd, all, &off);
  EXPECT_GE(counters_.tcp_reads_paused.load(), 1u);
  uint64_t asked = counters_.queries_tcp.load();
  EXPECT_LT(asked, kQueries + 1u) << "every query was read: reading never paused";
  // What the connection holds: the queue (with one answer over the cap, in
  // a buffer that grows by doubling), the write in flight, a read chunk.
  // (And the warming connection, with at most 4 KiB kept.)
  int64_t bound = TcpListener::kConnectionCost * 2 + 2 * (32 << 10) + (16 << 10) + (4 << 10);
  EXPECT_LE(listener_->held_bytes(), bound);
  EXPECT_EQ(budget_->used(), listener_->held_bytes());
  RunFor(absl::Milliseconds(100));
  EXPECT_EQ(counters_.queries_tcp.load(), asked) << "read while paused";

  // Once the client reads, everything is answered.
  TcpClient c;
  c.fd = fd;
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (c.Frames().size() < kQueries && absl::Now() < deadline && !c.closed) {
    SendWhatFits(fd, all, &off, absl::Milliseconds(1));
    c.Pump();
  }
  EXPECT_EQ(c.Frames().size(), static_cast<size_t>(kQueries));
  EXPECT_EQ(counters_.queries_tcp.load(), kQueries + 1u);
}

TEST_F(NeverReadingTest, OverTheBudgetStalledConnectionsAreCutFirst) {
  TcpOptions o;
  o.max_write_queue = 16 << 10;
  o.memory_budget = 1 << 20;
  Start(o);
  Warm();
  int stalled = NeverReader();
  std::string all = Queries(4000);
  size_t off = 0;
  SendWhatFits(stalled, all, &off);
  ASSERT_GE(counters_.tcp_reads_paused.load(), 1u);
  int64_t held = listener_->held_bytes();
  // Other workers' connections hold the rest of the budget but a little.
  int64_t others = budget_->limit() - held - 512;
  budget_->Add(others);
  Advance(absl::Seconds(1));
  // A second client that does not read either: its answers need room.
  int second = NeverReader();
  size_t off2 = 0;
  SendWhatFits(second, all, &off2);
  EXPECT_EQ(counters_.tcp_budget_cut.load(), 1u);
  // The cut connection's unread answers are lost with it; then the reset.
  EXPECT_TRUE(RunUntil([&] {
    char buf[65536];
    ssize_t n = recv(stalled, buf, sizeof(buf), 0);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  }));
  EXPECT_LE(budget_->used(), budget_->limit() + TcpListener::kConnectionCost);
  budget_->Add(-others);
}

TEST_F(TcpListenerTest, ANewConnectionOverASpentBudgetIsClosed) {
  TcpOptions o;
  o.memory_budget = 1 << 20;
  Start(o);
  budget_->Add(budget_->limit());  // spent by other workers
  TcpClient c = Client();
  EXPECT_TRUE(AwaitClosed(c));
  EXPECT_EQ(counters_.tcp_budget_closed.load(), 1u);
  EXPECT_EQ(listener_->held_bytes(), 0);
  budget_->Add(-budget_->limit());
  TcpClient d = Client();
  SendAll(d.fd, Frame(NotifyQuery(1)));
  EXPECT_EQ(Await(d, 1).size(), 1u);
}

// A burst of connects is accepted a few per loop iteration (so UDP queries
// waiting in the same loop are not held behind it), and all of them in the end.
TEST_F(TcpListenerTest, ABurstOfConnectsIsAcceptedAFewPerLoopIteration) {
  Start();
  constexpr int kBurst = 3 * tcp_internal::kAcceptsPerTurn + 5;
  std::vector<int> fds;
  for (int i = 0; i < kBurst; ++i) fds.push_back(Connect(SOCK_STREAM));  // completed by the kernel's backlog
  int iterations = 0;
  uint64_t most_in_one = 0;
  while (counters_.tcp_accepted.load() < static_cast<uint64_t>(kBurst) && iterations < 1000) {
    uint64_t before = counters_.tcp_accepted.load();
    uv_run(&loop_, UV_RUN_NOWAIT);
    most_in_one = std::max(most_in_one, counters_.tcp_accepted.load() - before);
    ++iterations;
  }
  EXPECT_EQ(counters_.tcp_accepted.load(), static_cast<uint64_t>(kBurst));
  EXPECT_EQ(most_in_one, static_cast<uint64_t>(tcp_internal::kAcceptsPerTurn));
  EXPECT_GE(iterations, 4);
  EXPECT_EQ(listener_->connections(), static_cast<size_t>(kBurst));
  for (int fd : fds) close(fd);
}

}  // namespace
}  // namespace nodedns::server::listener_test
