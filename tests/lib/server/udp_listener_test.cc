#include "lib/server/udp_listener.h"

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/lib/server/listener_harness.h"
#include "tests/support/log_capture.h"

namespace nodedns::server::listener_test {
namespace {

class UdpListenerTest : public ListenerHarness {
 protected:
  void SetUp() override {
    ListenerHarness::SetUp();
    if (HasFatalFailure()) return;
    close(tcp_fd_);
    listener_ = std::make_unique<UdpListener>(&loop_, udp_fd_, resolver_.get(), &counters_, 1232);
    ASSERT_TRUE(listener_->Start().ok());
  }
  void CloseHandles() override {
    if (listener_) {
      listener_->Close();
    } else if (udp_fd_ >= 0) {
      close(udp_fd_);
    }
  }

  // Every datagram that has arrived on `fd`.
  static std::vector<std::vector<uint8_t>> Receive(int fd) {
    std::vector<std::vector<uint8_t>> out;
    uint8_t buf[65536];
    for (;;) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n < 0) return out;
      out.emplace_back(buf, buf + n);
    }
  }
  // Runs the loop until `fd` has received `count` datagrams in all.
  std::vector<std::vector<uint8_t>> ReceiveN(int fd, size_t count) {
    std::vector<std::vector<uint8_t>> got;
    RunUntil([&] {
      for (auto& d : Receive(fd)) got.push_back(std::move(d));
      return got.size() >= count;
    });
    return got;
  }

  std::unique_ptr<UdpListener> listener_;
};

TEST_F(UdpListenerTest, AnswersAtOnceWhatTheResolverAnswersAtOnce) {
  int c = Connect(SOCK_DGRAM);
  SendAll(c, NotifyQuery(0x4242));
  auto got = ReceiveN(c, 1);
  ASSERT_EQ(got.size(), 1u);
  auto m = dns::ParseMessage(got[0]);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->id, 0x4242);
  EXPECT_TRUE(m->flags & dns::kFlagQR);
  EXPECT_EQ(m->rcode(), dns::kNotImp);
  EXPECT_EQ(counters_.queries_udp.load(), 1u);
  EXPECT_EQ(counters_.notimp_sent.load(), 1u);
  HistogramValues latency;
  latency.Add(counters_.latency);
  EXPECT_EQ(latency.count(), 1u);  // one latency sample per answer
}

TEST_F(UdpListenerTest, AnswersLaterThroughSendReplyThenFromTheCache) {
  int c = Connect(SOCK_DGRAM);
  SendAll(c, AQuery("www.example", 0x0101));
  ASSERT_TRUE(RunUntil([&] { return upstream_.sent.size() == 1; }));
  RunFor(absl::Milliseconds(20));
  EXPECT_TRUE(Receive(c).empty()) << "answered before the upstream did";

  upstream_.Answer();
  auto got = ReceiveN(c, 1);
  ASSERT_EQ(got.size(), 1u);
  auto m = dns::ParseMessage(got[0]);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->id, 0x0101);
  ASSERT_EQ(m->answers.size(), 1u);
  EXPECT_EQ(m->answers[0].rdata, std::string("\x0a\x00\x00\x07", 4));

  // Asked again: a cache hit, answered without the upstream.
  SendAll(c, AQuery("www.example", 0x0202));
  got = ReceiveN(c, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(IdOf(got[0]), 0x0202);
  EXPECT_TRUE(upstream_.sent.empty());
  EXPECT_EQ(counters_.cache_hits.load(), 1u);
  HistogramValues latency;
  latency.Add(counters_.latency);
  EXPECT_EQ(latency.count(), 2u);
}

TEST_F(UdpListenerTest, ABurstLargerThanSeveralBatchesIsAnsweredWhole) {
  int c = Connect(SOCK_DGRAM);
  constexpr int kQueries = 5 * UdpListener::kBatch + 3;  // more than one wakeup's four batches
  for (int i = 0; i < kQueries; ++i) SendAll(c, NotifyQuery(static_cast<uint16_t>(i)));
  auto got = ReceiveN(c, kQueries);
  ASSERT_EQ(got.size(), static_cast<size_t>(kQueries));
  std::set<uint16_t> ids;
  for (const auto& d : got) ids.insert(IdOf(d));
  EXPECT_EQ(ids.size(), static_cast<size_t>(kQueries));
  EXPECT_EQ(counters_.queries_udp.load(), static_cast<uint64_t>(kQueries));
  EXPECT_EQ(counters_.udp_send_errors.load(), 0u);
}

TEST_F(UdpListenerTest, EachClientGetsItsOwnAnswerOfACoalescedQuery) {
  int a = Connect(SOCK_DGRAM);
  int b = Connect(SOCK_DGRAM);
  SendAll(a, AQuery("shared.example", 0xaaaa));
  SendAll(b, AQuery("SHARED.example", 0xbbbb));
  ASSERT_TRUE(RunUntil([&] { return counters_.queries_udp.load() == 2; }));
  ASSERT_EQ(upstream_.sent.size(), 1u);  // one upstream query for both
  upstream_.Answer();
  auto got_a = ReceiveN(a, 1);
  auto got_b = ReceiveN(b, 1);
  ASSERT_EQ(got_a.size(), 1u);
  ASSERT_EQ(got_b.size(), 1u);
  EXPECT_EQ(IdOf(got_a[0]), 0xaaaa);
  EXPECT_EQ(IdOf(got_b[0]), 0xbbbb);
  // Each in its own letter case (the question is the client's).
  EXPECT_EQ(nodedns::testing::Parse(got_b[0]).questions[0].name, std::string("\6SHARED\7example\0", 16));
}

TEST_F(UdpListenerTest, DropsWhatIsNotAQueryAndKeepsServing) {
  int c = Connect(SOCK_DGRAM);
  SendAll(c, std::string("\x12\x34\x01\x00\x00", 5));  // shorter than a header
  SendAll(c, std::string());                              // empty
  auto response = NotifyQuery(0x0505);
  response[2] |= 0x80;  // QR=1
  SendAll(c, response);
  std::vector<uint8_t> oversize = NotifyQuery(0x0606);
  oversize.resize(UdpListener::kMaxQuerySize + 1000, 0);
  SendAll(c, oversize);
  SendAll(c, NotifyQuery(0x0707));

  auto got = ReceiveN(c, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(IdOf(got[0]), 0x0707);
  RunFor(absl::Milliseconds(20));
  EXPECT_TRUE(Receive(c).empty());
  EXPECT_EQ(counters_.dropped_too_short.load(), 2u);
  EXPECT_EQ(counters_.dropped_is_response.load(), 1u);
  EXPECT_EQ(counters_.dropped_oversize.load(), 1u);
}

TEST_F(UdpListenerTest, TheLargestQueryThatFitsIsRead) {
  int c = Connect(SOCK_DGRAM);
  // kMaxQuerySize octets: the opcode is checked before the rest, so the
  // padding does not matter.
  std::vector<uint8_t> q = NotifyQuery(0x0808);
  q.resize(UdpListener::kMaxQuerySize, 0);
  SendAll(c, q);
  auto got = ReceiveN(c, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(IdOf(got[0]), 0x0808);
  EXPECT_EQ(counters_.dropped_oversize.load(), 0u);
}

TEST_F(UdpListenerTest, StopReadingLeavesQueriesQueuedUntilDrain) {
  int c = Connect(SOCK_DGRAM);
  listener_->StopReading();
  SendAll(c, NotifyQuery(1));
  SendAll(c, NotifyQuery(2));
  RunFor(absl::Milliseconds(30));
  EXPECT_TRUE(Receive(c).empty());
  EXPECT_EQ(counters_.queries_udp.load(), 0u);
  // Drain answers everything the kernel already accepted, without the loop.
  listener_->Drain();
  EXPECT_EQ(counters_.queries_udp.load(), 2u);
  auto got = ReceiveN(c, 2);
  EXPECT_EQ(got.size(), 2u);
}

TEST_F(UdpListenerTest, ANewResolverTakesNewQueriesWhileTheOldOneAnswersItsOwn) {
  StubUpstream next_upstream;
  upstream::Zone next_zone;
  next_zone.name = ".";
  next_zone.upstream = &next_upstream;
  upstream::Router next_router;
  next_router.AddZone(std::string(1, '\0'), &next_zone);
  resolver::Resolver next(resolver::ResolverOptions{}, cache_.get(), &next_router, &clock_, &timers_, &counters_);

  int c = Connect(SOCK_DGRAM);
  SendAll(c, AQuery("old.example", 1));
  ASSERT_TRUE(RunUntil([&] { return upstream_.sent.size() == 1; }));
  listener_->set_resolver(&next);
  SendAll(c, AQuery("new.example", 2));
  ASSERT_TRUE(RunUntil([&] { return next_upstream.sent.size() == 1; }));
  EXPECT_EQ(upstream_.sent.size(), 1u);

  upstream_.Answer();  // the old resolver's answer still reaches the client
  next_upstream.Answer();
  auto got = ReceiveN(c, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(IdOf(got[0]), 1);
  EXPECT_EQ(IdOf(got[1]), 2);
  listener_->Close();
  ASSERT_TRUE(RunUntil([&] { return !uv_loop_alive(&loop_); }));
}

TEST_F(UdpListenerTest, AnswersAfterCloseAreDropped) {
  int c = Connect(SOCK_DGRAM);
  SendAll(c, AQuery("late.example", 9));
  ASSERT_TRUE(RunUntil([&] { return upstream_.sent.size() == 1; }));
  listener_->Close();
  ASSERT_TRUE(RunUntil([&] { return !uv_loop_alive(&loop_); }));
  upstream_.Answer();  // SendReply on a closed listener: nothing is sent
  EXPECT_TRUE(Receive(c).empty());
  EXPECT_EQ(counters_.udp_send_errors.load(), 0u);
}

TEST_F(UdpListenerTest, SampledAnswersAreLogged) {
  nodedns::testing::LogCapture log;
  QueryLog query_log;
  query_log.set_sample(2);
  listener_->set_query_log(&query_log);
  int c = Connect(SOCK_DGRAM);
  SendAll(c, AQuery("logged.example", 1));
  ASSERT_TRUE(RunUntil([&] { return upstream_.sent.size() == 1; }));
  upstream_.Answer();  // answered later: SendReply
  ASSERT_EQ(ReceiveN(c, 1).size(), 1u);
  SendAll(c, AQuery("logged.example", 2));  // answered at once: the batch path
  ASSERT_EQ(ReceiveN(c, 1).size(), 1u);
  SendAll(c, AQuery("logged.example", 3));
  SendAll(c, AQuery("logged.example", 4));
  ASSERT_EQ(ReceiveN(c, 2).size(), 2u);
  // One answer in two: the second and the fourth.
  auto lines = log.lines();
  ASSERT_EQ(lines.size(), 2u) << log.text();
  sockaddr_storage local{};
  socklen_t len = sizeof(local);
  getsockname(c, reinterpret_cast<sockaddr*>(&local), &len);
  std::string client = SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&local)).ToString();
  for (const std::string& line : lines) {
    EXPECT_THAT(line, ::testing::StartsWith("query client=" + client + " proto=udp name=logged.example. type=A "
                                            "rcode=NOERROR answers=1"));
  }
  listener_->set_query_log(nullptr);
}

}  // namespace
}  // namespace nodedns::server::listener_test
