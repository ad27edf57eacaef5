#include "lib/upstream/udp_channel.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <set>
#include <vector>

#include "gtest/gtest.h"
#include "lib/dns/constants.h"
#include "lib/dns/name.h"
#include "lib/dns/query_view.h"
#include "lib/dns/writers.h"
#include "tests/support/all_counters.h"

namespace nodedns::upstream {
namespace {

UdpChannelOptions Options(absl::Duration timeout, int attempts) {
  UdpChannelOptions o;
  o.timeout = timeout;
  o.attempts = attempts;
  return o;
}

// A UDP "server" on 127.0.0.1 the test answers by hand, and a libuv loop
// with the channel's timer queue on the real steady clock.
class UdpChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(server_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    socklen_t len = sizeof(a);
    getsockname(server_, reinterpret_cast<sockaddr*>(&a), &len);
    address_ = SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&a));
    uv_loop_init(&loop_);
    uv_timer_init(&loop_, &tick_);
    tick_.data = this;
    timers_.set_wakeup([this](absl::Time) { Arm(); });
  }
  void TearDown() override {
    channel_.reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    close(server_);
  }
  void Arm() {
    auto next = timers_.NextDeadline();
    if (!next) return;
    int64_t ms = std::max<int64_t>(0, absl::ToInt64Milliseconds(*next - clock_->Now()) + 1);
    uv_timer_start(&tick_, [](uv_timer_t* t) {
      auto* self = static_cast<UdpChannelTest*>(t->data);
      self->timers_.RunDue(self->clock_->Now());
      self->Arm();
    }, static_cast<uint64_t>(ms), 0);
  }
  void Make(UdpChannelOptions o = {}) {
    o.name = "test";
    o.server = address_;
    channel_ = std::make_unique<UdpChannel>(&loop_, &timers_, clock_, &counters_, o);
  }
  // Sends a query for `name`; the result lands in results_[tag].
  void Send(const std::string& name, int tag) {
    std::vector<uint8_t> q(dns::kMaxQuerySize);
    q.resize(dns::WriteQuery(*dns::NameFromText(name), dns::kTypeA, dns::kClassIN, false, false, q.data()));
    channel_->Send(q, [this, tag](const absl::Status& st, absl::Span<const uint8_t> answer, const AnswerTiming& t) {
      results_[tag] = {st, std::vector<uint8_t>(answer.begin(), answer.end())};
      timings_[tag] = t;
    });
  }
  // Runs the loop until `n` results exist or `limit` passes.
  void RunUntil(size_t n, absl::Duration limit = absl::Seconds(5)) {
    absl::Time end = clock_->Now() + limit;
    while (results_.size() < n && clock_->Now() < end) uv_run(&loop_, UV_RUN_NOWAIT), usleep(500);
  }
  struct Received {
    std::vector<uint8_t> query;
    sockaddr_in from;
  };
  // The next query the server received (waits up to a second).
  std::optional<Received> Receive() {
    pollfd p{server_, POLLIN, 0};
    for (int i = 0; i < 200; ++i) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      if (poll(&p, 1, 5) == 1) {
        Received r;
        r.query.resize(4096);
        socklen_t len = sizeof(r.from);
        ssize_t n = recvfrom(server_, r.query.data(), r.query.size(), 0, reinterpret_cast<sockaddr*>(&r.from), &len);
        r.query.resize(static_cast<size_t>(std::max<ssize_t>(0, n)));
        return r;
      }
    }
    return std::nullopt;
  }
  void Reply(const Received& to, std::vector<uint8_t> answer) {
    sendto(server_, answer.data(), answer.size(), 0, reinterpret_cast<const sockaddr*>(&to.from), sizeof(to.from));
  }
  // The query made an answer: QR, and the question as it was asked.
  static std::vector<uint8_t> AnswerTo(const std::vector<uint8_t>& query) {
    std::vector<uint8_t> a = query;
    a[2] |= 0x80;
    return a;
  }

  int server_ = -1;
  SocketAddress address_;
  uv_loop_t loop_;
  uv_timer_t tick_;
  const SteadyClock* clock_ = SystemSteadyClock::Get();
  TimerQueue timers_;
  AllCounters counters_;
  std::unique_ptr<UdpChannel> channel_;
  std::map<int, std::pair<absl::Status, std::vector<uint8_t>>> results_;
  std::map<int, AnswerTiming> timings_;
};

TEST_F(UdpChannelTest, ANewRandomPortForEveryQueryARandomIdAndRandomCase) {
  Make();
  std::map<uint16_t, int> per_port;
  std::set<uint16_t> ids;
  int mixed = 0;
  for (int i = 0; i < 80; ++i) {
    Send("case-" + std::to_string(i) + ".example", i);
    auto r = Receive();
    ASSERT_TRUE(r);
    ++per_port[ntohs(r->from.sin_port)];
    ids.insert(dns::Read16(r->query.data()));
    std::string as_sent(r->query.begin() + dns::kHeaderSize, r->query.end());
    mixed += as_sent != dns::Lowercase(as_sent);
    Reply(*r, AnswerTo(r->query));
  }
  RunUntil(80);
  ASSERT_EQ(results_.size(), 80u);
  for (auto& [tag, res] : results_) EXPECT_TRUE(res.first.ok()) << res.first;
  EXPECT_GE(per_port.size(), 79u);  // the kernel's random ephemeral ports may repeat, rarely
  EXPECT_GE(ids.size(), 78u);
  EXPECT_GE(mixed, 78);
}

TEST_F(UdpChannelTest, ForgedAndStrayPacketsAreIgnoredAndTheQueryWaitsForItsAnswer) {
  Make();
  Send("forged.example", 1);
  auto r = Receive();
  ASSERT_TRUE(r);
  std::vector<uint8_t> query_again = r->query;  // QR=0 with the right ID
  Reply(*r, query_again);
  auto wrong_id = AnswerTo(r->query);
  wrong_id[1] ^= 1;
  Reply(*r, wrong_id);
  auto wrong_case = AnswerTo(r->query);
  for (size_t i = dns::kHeaderSize + 1; i < wrong_case.size() - 4; ++i) wrong_case[i] ^= 0x20 * (std::isalpha(wrong_case[i]) != 0);
  Reply(*r, wrong_case);
  Reply(*r, {r->query[0], r->query[1], 0x80});  // a header cut short
  auto other_name = AnswerTo(r->query);
  other_name[dns::kHeaderSize + 1] = 'x';
  Reply(*r, other_name);
  RunUntil(1, absl::Milliseconds(200));
  EXPECT_TRUE(results_.empty()) << "a forged packet ended the query";
  auto real = AnswerTo(r->query);
  real[3] = 0;
  Reply(*r, real);
  RunUntil(1);
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_TRUE(results_[1].first.ok());
  EXPECT_EQ(results_[1].second, real);
  EXPECT_EQ(counters_.upstream_ignored.load(), 5u);
}

TEST_F(UdpChannelTest, AServerThatDoesNotEchoCaseIsAskedInLowercaseAfterThreeTries) {
  Make(Options(absl::Milliseconds(50), 1));
  for (int i = 0; i < 3; ++i) {
    Send("lower" + std::to_string(i) + ".example", i);
    auto r = Receive();
    ASSERT_TRUE(r);
    auto a = AnswerTo(r->query);
    for (size_t j = dns::kHeaderSize; j < a.size() - 4; ++j) a[j] = static_cast<uint8_t>(std::tolower(a[j]));
    Reply(*r, a);
  }
  RunUntil(3);
  EXPECT_FALSE(channel_->randomizing_case());
  for (auto& [tag, res] : results_) EXPECT_TRUE(absl::IsDeadlineExceeded(res.first));
  Send("now.lower.example", 9);
  auto r = Receive();
  ASSERT_TRUE(r);
  std::string as_sent(r->query.begin() + dns::kHeaderSize, r->query.end() - 4 - 11);
  EXPECT_EQ(as_sent, dns::Lowercase(as_sent));
  auto a = AnswerTo(r->query);
  for (size_t j = dns::kHeaderSize; j < a.size() - 4; ++j) a[j] = static_cast<uint8_t>(std::tolower(a[j]));
  Reply(*r, a);
  RunUntil(4);
  EXPECT_TRUE(results_[9].first.ok());
}

TEST_F(UdpChannelTest, AttemptsAsCaresMakesThemThenDeadlineExceeded) {
  Make(Options(absl::Milliseconds(60), 2));
  absl::Time start = clock_->Now();
  Send("silent.example", 1);
  auto first = Receive();
  auto second = Receive();
  ASSERT_TRUE(first && second);
  // The same question in the same case from the same port, with an ID of its own.
  EXPECT_EQ(std::vector<uint8_t>(first->query.begin() + 2, first->query.end()),
            std::vector<uint8_t>(second->query.begin() + 2, second->query.end()));
  EXPECT_NE(dns::Read16(first->query.data()), dns::Read16(second->query.data()));
  EXPECT_EQ(first->from.sin_port, second->from.sin_port);
  RunUntil(1);
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_TRUE(absl::IsDeadlineExceeded(results_[1].first)) << results_[1].first;
  absl::Duration took = clock_->Now() - start;
  EXPECT_GE(took, absl::Milliseconds(180));  // 60 ms, then 120 ms
  EXPECT_LT(took, absl::Seconds(2));
}

// The answer says which attempt it answers: a retry's answer shows the loss
// that the retry hid, and its round trip counts from the retry.
TEST_F(UdpChannelTest, AnAnswerToTheRetryReportsTheLostAttemptAndItsOwnSendTime) {
  Make(Options(absl::Milliseconds(100), 2));
  absl::Time start = clock_->Now();
  Send("lost-once.example", 1);
  auto first = Receive();
  auto second = Receive();  // the first is never answered: lost
  ASSERT_TRUE(first && second);
  absl::Time retried = clock_->Now();
  Reply(*second, AnswerTo(second->query));
  RunUntil(1);
  ASSERT_EQ(results_.size(), 1u);
  ASSERT_TRUE(results_[1].first.ok()) << results_[1].first;
  EXPECT_EQ(timings_[1].earlier_attempts, 1);
  EXPECT_GE(timings_[1].sent, start + absl::Milliseconds(100));
  EXPECT_LE(timings_[1].sent, retried);
  EXPECT_GE(timings_[1].received, timings_[1].sent);
  Send("next.example", 2);
  auto r = Receive();
  ASSERT_TRUE(r);
  Reply(*r, AnswerTo(r->query));
  RunUntil(2);
  EXPECT_EQ(timings_[2].earlier_attempts, 0);
}

// A late answer to the first attempt, arriving after the retry went out, is
// taken, and is latency, not a loss.
TEST_F(UdpChannelTest, ALateAnswerToTheFirstAttemptIsTakenAndIsNoLoss) {
  Make(Options(absl::Milliseconds(100), 2));
  absl::Time start = clock_->Now();
  Send("slow.example", 1);
  auto first = Receive();
  auto second = Receive();
  ASSERT_TRUE(first && second);
  Reply(*first, AnswerTo(first->query));
  RunUntil(1);
  ASSERT_EQ(results_.size(), 1u);
  ASSERT_TRUE(results_[1].first.ok()) << results_[1].first;
  EXPECT_EQ(results_[1].second, AnswerTo(first->query));
  EXPECT_EQ(timings_[1].earlier_attempts, 0);
  EXPECT_GE(timings_[1].sent, start);
  EXPECT_LT(timings_[1].sent, start + absl::Milliseconds(100));
  EXPECT_GE(timings_[1].received - timings_[1].sent, absl::Milliseconds(100));
}

TEST_F(UdpChannelTest, ARefusingServerFailsTheQueryAtOnceAndShutdownCancels) {
  Make(Options(absl::Seconds(5), 2));
  close(server_);  // nothing listens: the kernel answers ICMP port unreachable
  server_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  absl::Time start = clock_->Now();
  Send("refused.example", 1);
  RunUntil(1);
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_TRUE(absl::IsUnavailable(results_[1].first)) << results_[1].first;
  EXPECT_LT(clock_->Now() - start, absl::Seconds(1));
  Send("cancelled.example", 2);
  EXPECT_EQ(results_.size(), 1u);  // never from inside Send
  channel_->Shutdown();
  ASSERT_EQ(results_.size(), 2u);
  EXPECT_TRUE(absl::IsCancelled(results_[2].first));
}

}  // namespace
}  // namespace nodedns::upstream
