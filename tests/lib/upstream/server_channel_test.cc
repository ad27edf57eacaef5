#include "lib/upstream/server_channel.h"

#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lib/dns/constants.h"
#include "lib/dns/message.h"
#include "lib/dns/name.h"
#include "lib/dns/writers.h"
#include "tests/support/all_counters.h"
#include "tests/support/fake_upstream.h"

// ServerChannel (UDP through UdpChannel, then TCP through TcpChannel for a
// truncated answer) against the in-process fake upstream, on a libuv loop the
// test runs, with the real steady clock.

namespace nodedns::upstream {
namespace {

using nodedns::testing::FakeUpstream;

std::vector<uint8_t> Query(const std::string& name, uint16_t id = 0x4321) {
  std::vector<uint8_t> q(dns::kMaxQuerySize);
  q.resize(dns::WriteQuery(*dns::NameFromText(name), dns::kTypeA, dns::kClassIN, false, false, q.data()));
  q[0] = static_cast<uint8_t>(id >> 8);
  q[1] = static_cast<uint8_t>(id);
  return q;
}

struct Result {
  absl::Status status;
  std::vector<uint8_t> answer;
  absl::Time received = absl::InfinitePast();
};

class ServerChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    upstream_ = FakeUpstream::Start();
    ASSERT_NE(upstream_, nullptr);
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    ASSERT_EQ(uv_timer_init(&loop_, &tick_), 0);
    tick_.data = this;
    timers_.set_wakeup([this](absl::Time) { Arm(); });
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    server_.reset();
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }
  void Arm() {
    auto next = timers_.NextDeadline();
    if (!next) return;
    int64_t ms = std::max<int64_t>(0, absl::ToInt64Milliseconds(*next - clock_->Now()) + 1);
    uv_timer_start(&tick_, [](uv_timer_t* t) {
      auto* self = static_cast<ServerChannelTest*>(t->data);
      self->timers_.RunDue(self->clock_->Now());
      self->Arm();
    }, static_cast<uint64_t>(ms), 0);
  }
  SocketAddress Address(uint16_t port) const {
    return *SocketAddress::Parse("127.0.0.1:" + std::to_string(port));
  }
  void MakeServerChannel(absl::Duration timeout = absl::Seconds(1), int attempts = 2,
                         Protocol protocol = Protocol::kPreferUdp) {
    ServerChannelOptions o;
    o.protocol = protocol;
    o.name = "test";
    o.server = Address(upstream_->port());
    o.transport.timeout = timeout;
    o.transport.attempts = attempts;
    auto c = ServerChannel::Create(&loop_, &timers_, clock_, &counters_, o);
    ASSERT_TRUE(c.ok()) << c.status();
    server_ = std::move(*c);
  }
  // Sends through `t`; the result lands in results_[tag].
  void Send(Transport* t, const std::vector<uint8_t>& query, int tag) {
    t->Send(query, [this, t, tag](const absl::Status& st, absl::Span<const uint8_t> answer) {
      results_[tag] = {st, std::vector<uint8_t>(answer.begin(), answer.end()), t->last_answer().received};
    });
  }
  bool RunUntil(size_t n, absl::Duration limit = absl::Seconds(5)) {
    absl::Time end = clock_->Now() + limit;
    while (results_.size() < n && clock_->Now() < end) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      usleep(500);
    }
    return results_.size() >= n;
  }
  static dns::Message Parse(const Result& r) {
    auto m = dns::ParseMessage(r.answer);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *m : dns::Message();
  }

  std::unique_ptr<FakeUpstream> upstream_;
  uv_loop_t loop_;
  uv_timer_t tick_;
  TimerQueue timers_;
  AllCounters counters_;
  const SteadyClock* clock_ = SystemSteadyClock::Get();
  std::unique_ptr<ServerChannel> server_;
  std::map<int, Result> results_;
};

TEST_F(ServerChannelTest, AnswersOverUdp) {
  MakeServerChannel();
  absl::Time sent = clock_->Now();
  Send(server_.get(), Query("www.example"), 1);
  ASSERT_TRUE(RunUntil(1));
  const Result& r = results_[1];
  ASSERT_TRUE(r.status.ok()) << r.status;
  dns::Message m = Parse(r);
  ASSERT_EQ(m.answers.size(), 1u);
  EXPECT_EQ(m.answers[0].rdata, std::string("\xc0\x00\x02\x01", 4));
  EXPECT_EQ(upstream_->udp_queries(), 1);
  EXPECT_EQ(upstream_->tcp_queries(), 0);
  // During the callback, when the answer arrived (the kernel's time).
  EXPECT_GE(r.received, sent);
  EXPECT_LE(r.received, clock_->Now());
  EXPECT_EQ(server_->last_answer().received, absl::InfinitePast());  // only during the callback
}

TEST_F(ServerChannelTest, ATruncatedUdpAnswerIsAskedAgainOverTcp) {
  upstream_->set_mode(FakeUpstream::Mode::kTruncateUdp);
  MakeServerChannel();
  Send(server_.get(), Query("big.example"), 1);
  ASSERT_TRUE(RunUntil(1));
  const Result& r = results_[1];
  ASSERT_TRUE(r.status.ok()) << r.status;
  dns::Message m = Parse(r);
  EXPECT_FALSE(m.flags & dns::kFlagTC);
  EXPECT_EQ(m.answers.size(), 40u);  // the fake's answer for "big..." names
  EXPECT_EQ(upstream_->udp_queries(), 1);
  EXPECT_EQ(upstream_->tcp_queries(), 1);
}

TEST_F(ServerChannelTest, UdpOnlyHandsATruncatedAnswerOnAsItIs) {
  upstream_->set_mode(FakeUpstream::Mode::kTruncateUdp);
  MakeServerChannel(absl::Seconds(1), 2, Protocol::kUdp);
  Send(server_.get(), Query("big.example"), 1);
  ASSERT_TRUE(RunUntil(1));
  ASSERT_TRUE(results_[1].status.ok()) << results_[1].status;
  dns::Message m = Parse(results_[1]);
  EXPECT_TRUE(m.flags & dns::kFlagTC);
  EXPECT_TRUE(m.answers.empty());
  EXPECT_EQ(upstream_->udp_queries(), 1);
  EXPECT_EQ(upstream_->tcp_queries(), 0);
}

TEST_F(ServerChannelTest, TcpOnlyReusesOneConnectionAndReconnectsWhenTheServerClosesIt) {
  MakeServerChannel(absl::Seconds(1), 2, Protocol::kTcp);
  for (int i = 0; i < 3; ++i) Send(server_.get(), Query("n" + std::to_string(i) + ".example"), i);
  ASSERT_TRUE(RunUntil(3));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(results_[i].status.ok()) << results_[i].status;
    EXPECT_EQ(Parse(results_[i]).answers.size(), 1u);
  }
  EXPECT_EQ(upstream_->udp_queries(), 0);
  EXPECT_EQ(upstream_->tcp_queries(), 3);
  EXPECT_EQ(upstream_->tcp_connections(), 1) << "the connection is kept open and reused";
  Send(server_.get(), Query("again.example"), 3);  // on the open connection
  ASSERT_TRUE(RunUntil(4));
  EXPECT_EQ(upstream_->tcp_connections(), 1);
  // The server closes its idle connection: the next query opens a new one.
  upstream_->CloseTcpConnections();
  for (int i = 0; i < 20; ++i) uv_run(&loop_, UV_RUN_NOWAIT), usleep(500);  // c-ares sees the close
  Send(server_.get(), Query("after-close.example"), 4);
  ASSERT_TRUE(RunUntil(5));
  ASSERT_TRUE(results_[4].status.ok()) << results_[4].status;
  EXPECT_EQ(Parse(results_[4]).answers.size(), 1u);
  EXPECT_EQ(upstream_->tcp_connections(), 2);
  EXPECT_EQ(upstream_->udp_queries(), 0);
}

TEST_F(ServerChannelTest, TcpOnlyKeepsThePerQueryDeadline) {
  upstream_->set_mode(FakeUpstream::Mode::kDrop);
  MakeServerChannel(absl::Milliseconds(100), 2, Protocol::kTcp);
  absl::Time start = clock_->Now();
  Send(server_.get(), Query("lost.example"), 1);
  ASSERT_TRUE(RunUntil(1));
  absl::Duration took = clock_->Now() - start;
  EXPECT_FALSE(results_[1].status.ok());
  EXPECT_TRUE(absl::IsDeadlineExceeded(results_[1].status)) << results_[1].status;
  // At least the first attempt's timeout, at most every attempt's
  // (TransportOptions::longest(): 100 + 200 ms), with room for a loaded host.
  EXPECT_GE(took, absl::Milliseconds(100));
  EXPECT_LT(took, absl::Milliseconds(300 + 700));
  EXPECT_EQ(upstream_->udp_queries(), 0);
}

TEST_F(ServerChannelTest, ShutdownCancelsWhatIsInFlight) {
  upstream_->set_mode(FakeUpstream::Mode::kDrop);
  MakeServerChannel();
  Send(server_.get(), Query("a.example"), 1);
  for (int i = 0; i < 20; ++i) uv_run(&loop_, UV_RUN_NOWAIT), usleep(500);
  server_->Shutdown();
  ASSERT_TRUE(RunUntil(1));
  EXPECT_TRUE(absl::IsCancelled(results_[1].status)) << results_[1].status;
}

TEST_F(ServerChannelTest, NeverAnswersInsideSendEvenAfterShutdown) {
  MakeServerChannel();
  server_->Shutdown();
  Send(server_.get(), Query("late.example"), 1);
  EXPECT_TRUE(results_.empty()) << "the callback ran inside Send";
  ASSERT_TRUE(RunUntil(1));
  EXPECT_TRUE(absl::IsCancelled(results_[1].status)) << results_[1].status;
}

}  // namespace
}  // namespace nodedns::upstream
