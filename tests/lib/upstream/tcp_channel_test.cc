#include "lib/upstream/tcp_channel.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <optional>
#include <set>
#include <vector>

#include "gtest/gtest.h"
#include "lib/dns/constants.h"
#include "lib/dns/name.h"
#include "lib/dns/writers.h"

namespace nodedns::upstream {
namespace {

// An in-process TCP "server" on 127.0.0.1 the test answers by hand, and a
// libuv loop for the channel.
class TcpChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    ASSERT_EQ(listen(listener_, 16), 0);
    socklen_t len = sizeof(a);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    address_ = SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&a));
    ASSERT_EQ(uv_loop_init(&loop_), 0);
  }
  void TearDown() override {
    if (channel_) channel_->Shutdown();
    uv_run(&loop_, UV_RUN_DEFAULT);
    channel_.reset();
    EXPECT_EQ(uv_loop_close(&loop_), 0);
    for (int fd : conns_) close(fd);
    close(listener_);
  }
  void Make(absl::Duration timeout = absl::Seconds(2), int attempts = 1) {
    TcpChannelOptions o;
    o.name = "test";
    o.server = address_;
    o.timeout = timeout;
    o.attempts = attempts;
    auto c = TcpChannel::Create(&loop_, o);
    ASSERT_TRUE(c.ok()) << c.status();
    channel_ = std::move(*c);
  }
  void Send(const std::string& name, int tag) {
    std::vector<uint8_t> q(dns::kMaxQuerySize);
    q.resize(dns::WriteQuery(*dns::NameFromText(name), dns::kTypeA, dns::kClassIN, false, false, q.data()));
    channel_->Send(q, [this, tag](const absl::Status& st, absl::Span<const uint8_t> answer) {
      results_[tag] = {st, std::vector<uint8_t>(answer.begin(), answer.end())};
    });
  }
  // Accepts and reads until `n` framed queries arrived (or 2 s passed),
  // running the channel's loop meanwhile. Returns (connection, query) pairs.
  std::vector<std::pair<int, std::vector<uint8_t>>> ReceiveQueries(size_t n) {
    std::vector<std::pair<int, std::vector<uint8_t>>> out;
    for (int i = 0; i < 400 && out.size() < n; ++i) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      int c = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c >= 0) {
        conns_.push_back(c);
        buffers_[c];
      }
      for (int fd : conns_) {
        uint8_t tmp[4096];
        ssize_t got = read(fd, tmp, sizeof(tmp));
        if (got > 0) buffers_[fd].insert(buffers_[fd].end(), tmp, tmp + got);
        auto& b = buffers_[fd];
        while (b.size() >= 2 && b.size() >= 2u + dns::Read16(b.data())) {
          size_t len = dns::Read16(b.data());
          out.emplace_back(fd, std::vector<uint8_t>(b.begin() + 2, b.begin() + 2 + static_cast<long>(len)));
          b.erase(b.begin(), b.begin() + 2 + static_cast<long>(len));
        }
      }
      usleep(5000);
    }
    return out;
  }
  static void Reply(int fd, std::vector<uint8_t> answer) {
    std::vector<uint8_t> framed(2);
    dns::Write16(framed.data(), static_cast<uint16_t>(answer.size()));
    framed.insert(framed.end(), answer.begin(), answer.end());
    ASSERT_EQ(write(fd, framed.data(), framed.size()), static_cast<ssize_t>(framed.size()));
  }
  static std::vector<uint8_t> AnswerTo(const std::vector<uint8_t>& query) {
    std::vector<uint8_t> a = query;
    a[2] |= 0x80;
    return a;
  }
  void RunUntil(size_t n, absl::Duration limit = absl::Seconds(5)) {
    for (absl::Time end = absl::Now() + limit; results_.size() < n && absl::Now() < end; usleep(1000)) {
      uv_run(&loop_, UV_RUN_NOWAIT);
    }
  }

  int listener_ = -1;
  SocketAddress address_;
  uv_loop_t loop_;
  std::unique_ptr<TcpChannel> channel_;
  std::vector<int> conns_;
  std::map<int, std::vector<uint8_t>> buffers_;
  std::map<int, std::pair<absl::Status, std::vector<uint8_t>>> results_;
};

TEST_F(TcpChannelTest, QueriesShareOneConnectionWithRandomIdsAndGetTheirOwnAnswers) {
  Make();
  Send("a.example.", 1);
  Send("b.example.", 2);
  Send("c.example.", 3);
  auto queries = ReceiveQueries(3);
  ASSERT_EQ(queries.size(), 3u);
  std::set<int> fds;
  std::set<uint16_t> ids;
  for (const auto& [fd, q] : queries) {
    fds.insert(fd);
    ids.insert(dns::Read16(q.data()));
  }
  EXPECT_EQ(fds.size(), 1u) << "one connection, kept and reused";
  EXPECT_EQ(ids.size(), 3u) << "each query its own ID";
  // Answered out of order: each reaches its own query.
  for (int i = 2; i >= 0; --i) Reply(queries[static_cast<size_t>(i)].first, AnswerTo(queries[static_cast<size_t>(i)].second));
  RunUntil(3);
  ASSERT_EQ(results_.size(), 3u);
  for (int tag = 1; tag <= 3; ++tag) {
    ASSERT_TRUE(results_[tag].first.ok()) << results_[tag].first;
    const auto& answer = results_[tag].second;
    ASSERT_GE(answer.size(), dns::kHeaderSize + 3);
    std::string want = std::string(1, static_cast<char>('a' + tag - 1));
    EXPECT_EQ(answer[dns::kHeaderSize + 1], static_cast<uint8_t>(want[0])) << "tag " << tag;
    EXPECT_NE(answer[2] & 0x80, 0);
  }
  EXPECT_EQ(channel_->inflight(), 0u);
}

TEST_F(TcpChannelTest, AServerThatNeverAnswersFailsTheQueryAfterItsAttempts) {
  Make(absl::Milliseconds(100), 1);
  Send("slow.example.", 1);
  auto queries = ReceiveQueries(1);
  ASSERT_EQ(queries.size(), 1u);
  RunUntil(1, absl::Seconds(3));
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_FALSE(results_[1].first.ok());
  EXPECT_TRUE(absl::IsDeadlineExceeded(results_[1].first) || absl::IsUnavailable(results_[1].first))
      << results_[1].first;
}

TEST_F(TcpChannelTest, ShutdownCancelsWhatIsInFlightAndLaterSends) {
  Make();
  Send("a.example.", 1);
  ASSERT_EQ(ReceiveQueries(1).size(), 1u);
  channel_->Shutdown();
  RunUntil(1);
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_TRUE(absl::IsCancelled(results_[1].first)) << results_[1].first;
  Send("b.example.", 2);
  RunUntil(2);
  ASSERT_EQ(results_.size(), 2u);
  EXPECT_TRUE(absl::IsCancelled(results_[2].first)) << results_[2].first;
}

TEST_F(TcpChannelTest, NobodyListeningIsTheUpstreamsFailureNotOurs) {
  // A port nobody listens on: one just bound and closed again.
  int gone = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(gone, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t len = sizeof(a);
  getsockname(gone, reinterpret_cast<sockaddr*>(&a), &len);
  close(gone);
  address_ = SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&a));
  Make(absl::Milliseconds(200), 1);
  Send("x.example.", 1);
  RunUntil(1);
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_FALSE(results_[1].first.ok());
  // Cached as the upstream's failure, not one of nodedns's own making.
  EXPECT_FALSE(IsLocalFailure(results_[1].first)) << results_[1].first;
}

// The contract (tcp_channel.h, upstream.h): the callback never runs inside
// Send, also after Shutdown() (it used to, found by this test).
TEST_F(TcpChannelTest, NeverAnswersInsideSendEvenAfterShutdown) {
  Make();
  channel_->Shutdown();
  Send("late.example.", 1);
  EXPECT_TRUE(results_.empty()) << "the callback ran inside Send";
  RunUntil(1);
  EXPECT_EQ(results_.size(), 1u);
}

}  // namespace
}  // namespace nodedns::upstream
