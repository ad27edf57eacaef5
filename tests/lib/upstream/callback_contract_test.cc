// The contract of upstream.h: a Send callback runs exactly once, on the
// loop, and never from inside Send() (callers are not re-entrant: the
// resolver and the pool hold iterators and counts across the call). Every
// early failure path of every transport is driven here with a flag set around
// the Send call; a callback that runs while it is set fails the test.
// (UpstreamSet, the pool's predecessor, broke it on two failure paths.)

#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lib/common/clock.h"
#include "lib/common/counters.h"
#include "lib/common/timer_queue.h"
#include "lib/dns/constants.h"
#include "lib/dns/name.h"
#include "lib/dns/writers.h"
#include "lib/upstream/pool.h"
#include "lib/upstream/server_channel.h"
#include "lib/upstream/tcp_channel.h"
#include "lib/upstream/udp_channel.h"

namespace nodedns::upstream {
namespace {

std::vector<uint8_t> Query(const std::string& name) {
  std::vector<uint8_t> q(dns::kMaxQuerySize);
  q.resize(dns::WriteQuery(*dns::NameFromText(name), dns::kTypeA, dns::kClassIN, false, false, q.data()));
  return q;
}

// Connecting to the limited broadcast address fails at once: EACCES for a UDP
// socket without SO_BROADCAST, ENETUNREACH for TCP (inside c-ares's
// ares_send, which then ends the query, and calls back, right there).
const SocketAddress kBroadcast = *SocketAddress::Parse("255.255.255.255:53");

// What the callbacks saw: how many ran, how many inside Send, their statuses.
struct Calls {
  bool in_send = false;
  int ran = 0;
  int inside = 0;
  std::vector<absl::Status> statuses;
  void Note(const absl::Status& st) {
    ++ran;
    if (in_send) ++inside;
    statuses.push_back(st);
  }
};

class CallbackContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    ASSERT_EQ(uv_timer_init(&loop_, &tick_), 0);
    tick_.data = this;
    timers_.set_wakeup([this](absl::Time) { Arm(); });
  }
  void TearDown() override {
    if (udp_) udp_->Shutdown();
    if (tcp_) tcp_->Shutdown();
    if (server_) server_->Shutdown();
    pool_.reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    udp_.reset();
    tcp_.reset();
    server_.reset();
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }
  void Arm() {
    auto next = timers_.NextDeadline();
    if (!next) return;
    int64_t ms = std::max<int64_t>(0, absl::ToInt64Milliseconds(*next - clock_->Now()) + 1);
    uv_timer_start(&tick_, [](uv_timer_t* t) {
      auto* self = static_cast<CallbackContractTest*>(t->data);
      self->timers_.RunDue(self->clock_->Now());
      self->Arm();
    }, static_cast<uint64_t>(ms), 0);
  }
  void RunUntil(int n) {
    for (absl::Time end = clock_->Now() + absl::Seconds(5); calls_.ran < n && clock_->Now() < end; usleep(500)) {
      uv_run(&loop_, UV_RUN_NOWAIT);
    }
  }
  void MakeUdp(const SocketAddress& server) {
    UdpChannelOptions o;
    o.name = "test";
    o.server = server;
    udp_ = std::make_unique<UdpChannel>(&loop_, &timers_, clock_, &counters_, o);
  }
  void MakeTcp(const SocketAddress& server) {
    TcpChannelOptions o;
    o.name = "test";
    o.server = server;
    o.attempts = 1;
    auto c = TcpChannel::Create(&loop_, o);
    ASSERT_TRUE(c.ok()) << c.status();
    tcp_ = std::move(*c);
  }
  void MakeServer(const SocketAddress& server) {
    ServerChannelOptions o;
    o.name = "test";
    o.server = server;
    auto c = ServerChannel::Create(&loop_, &timers_, clock_, &counters_, o);
    ASSERT_TRUE(c.ok()) << c.status();
    server_ = std::move(*c);
  }
  // Send with the flag set around the call.
  void SendUdp(absl::Span<const uint8_t> q) {
    calls_.in_send = true;
    udp_->Send(q, [this](const absl::Status& st, absl::Span<const uint8_t>, const AnswerTiming&) { calls_.Note(st); });
    calls_.in_send = false;
  }
  void SendTransport(Transport* t, absl::Span<const uint8_t> q) {
    calls_.in_send = true;
    t->Send(q, [this](const absl::Status& st, absl::Span<const uint8_t>) { calls_.Note(st); });
    calls_.in_send = false;
  }
  // Exactly one callback, from the loop, with a status `pred` accepts.
  template <typename Pred>
  void ExpectOneLaterCall(Pred pred) {
    EXPECT_EQ(calls_.inside, 0) << "the callback ran inside Send";
    EXPECT_EQ(calls_.ran, 0) << "the callback ran inside Send";
    RunUntil(1);
    for (int i = 0; i < 20; ++i) uv_run(&loop_, UV_RUN_NOWAIT);  // and no second call
    ASSERT_EQ(calls_.ran, 1);
    EXPECT_TRUE(pred(calls_.statuses[0])) << calls_.statuses[0];
  }

  uv_loop_t loop_;
  uv_timer_t tick_;
  TimerQueue timers_;
  Counters counters_;
  const SteadyClock* clock_ = SystemSteadyClock::Get();
  std::unique_ptr<UdpChannel> udp_;
  std::unique_ptr<TcpChannel> tcp_;
  std::unique_ptr<ServerChannel> server_;
  std::unique_ptr<UpstreamPool> pool_;
  Calls calls_;
};

const SocketAddress kDiscard = *SocketAddress::Parse("127.0.0.1:9");

TEST_F(CallbackContractTest, UdpAfterShutdown) {
  MakeUdp(kDiscard);
  udp_->Shutdown();
  SendUdp(Query("a.example"));
  ExpectOneLaterCall([](const absl::Status& s) { return absl::IsCancelled(s); });
}

TEST_F(CallbackContractTest, UdpNotAQuery) {
  MakeUdp(kDiscard);
  const uint8_t junk[3] = {1, 2, 3};
  SendUdp(junk);
  ExpectOneLaterCall([](const absl::Status& s) { return absl::IsInvalidArgument(s); });
}

TEST_F(CallbackContractTest, UdpConnectFails) {
  MakeUdp(kBroadcast);
  SendUdp(Query("a.example"));
  ExpectOneLaterCall([](const absl::Status& s) { return absl::IsUnavailable(s); });
}

TEST_F(CallbackContractTest, UdpOutOfDescriptors) {
  MakeUdp(kDiscard);
  // UBSan's vptr check of a type it has not seen yet needs a descriptor (a
  // pipe to probe the memory): without one it reports a false "invalid
  // vptr". The failure path's shared_ptr<Done> and clock are seen here first.
  { auto seen = std::make_shared<UdpChannel::Done>(); auto copy = seen; }
  (void)clock_->Now();
  // Every descriptor below a lowered limit taken: socket() fails (EMFILE).
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  rlimit low = old;
  low.rlim_cur = 256;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  std::vector<int> taken;
  for (int fd; (fd = dup(0)) >= 0;) taken.push_back(fd);
  SendUdp(Query("a.example"));
  for (int fd : taken) close(fd);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
  ExpectOneLaterCall([](const absl::Status& s) { return absl::IsResourceExhausted(s); });
}

TEST_F(CallbackContractTest, TcpAfterShutdown) {
  MakeTcp(kDiscard);
  tcp_->Shutdown();
  SendTransport(tcp_.get(), Query("a.example"));
  ExpectOneLaterCall([](const absl::Status& s) { return absl::IsCancelled(s); });
}

TEST_F(CallbackContractTest, TcpNotAQuery) {
  MakeTcp(kDiscard);
  const uint8_t junk[5] = {1, 2, 3, 4, 5};
  SendTransport(tcp_.get(), junk);
  ExpectOneLaterCall([](const absl::Status& s) { return absl::IsInvalidArgument(s); });
}

TEST_F(CallbackContractTest, TcpFailsInsideAresSend) {
  MakeTcp(kBroadcast);
  SendTransport(tcp_.get(), Query("a.example"));
  ExpectOneLaterCall([](const absl::Status& s) { return !s.ok(); });
  // Shutdown delivers what is still deferred, once: nothing more here.
  tcp_->Shutdown();
  EXPECT_EQ(calls_.ran, 1);
}

TEST_F(CallbackContractTest, ServerChannelAfterShutdown) {
  MakeServer(kDiscard);
  server_->Shutdown();
  SendTransport(server_.get(), Query("a.example"));
  ExpectOneLaterCall([](const absl::Status& s) { return absl::IsCancelled(s); });
}

TEST_F(CallbackContractTest, ServerChannelNotAQuery) {
  MakeServer(kDiscard);
  const uint8_t junk[3] = {1, 2, 3};
  SendTransport(server_.get(), junk);
  ExpectOneLaterCall([](const absl::Status& s) { return absl::IsInvalidArgument(s); });
}

TEST_F(CallbackContractTest, ServerChannelConnectFails) {
  MakeServer(kBroadcast);
  SendTransport(server_.get(), Query("a.example"));
  ExpectOneLaterCall([](const absl::Status& s) { return absl::IsUnavailable(s); });
}

// The pool: a query it does not send is refused by the return value and its
// callback dropped uncalled; one it sends fails over and fails later, from
// the loop, never inside Send.
TEST_F(CallbackContractTest, PoolRefusalsDropTheCallbackAndFailuresComeLater) {
  MakeServer(kBroadcast);
  PoolOptions o;
  o.zone = ".";
  o.max_qps = 1;  // a bucket of one token
  o.breaker.failures_to_open = 100;
  std::vector<UpstreamPool::ServerSpec> servers = {{"a", server_.get()}, {"b", server_.get()}};
  pool_ = std::make_unique<UpstreamPool>(o, servers, clock_, &timers_, &counters_, 1);
  auto send = [&](const char* name) {
    calls_.in_send = true;
    SendResult r = pool_->Send(Query(name), Priority::kClient, kNoFlow,
                               [this](const absl::Status& st, absl::Span<const uint8_t>) { calls_.Note(st); });
    calls_.in_send = false;
    return r;
  };
  ASSERT_EQ(send("a.example"), SendResult::kSent);
  EXPECT_EQ(send("b.example"), SendResult::kOverCap);  // no token left
  // The first fails on both servers (failover from the first's callback),
  // once, from the loop; the refused one never calls back.
  ExpectOneLaterCall([](const absl::Status& s) { return absl::IsUnavailable(s); });

  // A pool without a usable server: refused, never called back.
  std::vector<UpstreamPool::ServerSpec> none;
  pool_ = std::make_unique<UpstreamPool>(o, none, clock_, &timers_, &counters_, 1);
  EXPECT_EQ(send("c.example"), SendResult::kUnavailable);
  for (int i = 0; i < 50; ++i) uv_run(&loop_, UV_RUN_NOWAIT), usleep(1000);
  EXPECT_EQ(calls_.ran, 1);
  EXPECT_EQ(calls_.inside, 0);
}

}  // namespace
}  // namespace nodedns::upstream
