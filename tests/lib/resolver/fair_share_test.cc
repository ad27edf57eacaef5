// Fair shares between clients and load shedding, on the fake clock:
// ClientFlow, ClientShares and the resolver's Admit path.

#include <deque>

#include "gtest/gtest.h"
#include "lib/dns/message.h"
#include "lib/dns/name.h"
#include "lib/resolver/client_share.h"
#include "lib/resolver/resolver.h"
#include "lib/upstream/pool.h"
#include "tests/support/all_counters.h"
#include "tests/support/dns_client.h"
#include "tests/support/fake_clock.h"

namespace nodedns::resolver {
namespace {

using upstream::FlowId;

SocketAddress Addr(const char* text) { return *SocketAddress::Parse(text); }

TEST(ClientFlowTest, AnAddressOrIpv6PrefixIsOneClient) {
  FlowId a = ClientFlow(Addr("10.0.0.1:1000"), 32, 64);
  EXPECT_EQ(a, ClientFlow(Addr("10.0.0.1:2000"), 32, 64));  // the port does not matter
  EXPECT_NE(a, ClientFlow(Addr("10.0.0.2:1000"), 32, 64));
  EXPECT_EQ(ClientFlow(Addr("10.0.0.1:1"), 24, 64), ClientFlow(Addr("10.0.0.2:1"), 24, 64));  // a /24 is one client
  FlowId v6 = ClientFlow(Addr("[2001:db8:1:2::5]:53"), 32, 64);
  EXPECT_EQ(v6, ClientFlow(Addr("[2001:db8:1:2:ffff::9]:53"), 32, 64));
  EXPECT_NE(v6, ClientFlow(Addr("[2001:db8:1:3::5]:53"), 32, 64));
  EXPECT_NE(v6, ClientFlow(Addr("[2001:db8:1:2::5]:53"), 32, 128)) << "/128: each address";
  for (const char* s : {"0.0.0.0:1", "[::]:1", "[::1]:1", "127.0.0.1:1"}) {
    FlowId f = ClientFlow(Addr(s), 32, 64);
    EXPECT_NE(f, upstream::kNoFlow) << s;
    EXPECT_NE(f, ClientShares::kUntracked) << s;
  }
  EXPECT_NE(ClientFlow(Addr("[::1]:1"), 32, 64), ClientFlow(Addr("0.0.0.0:1"), 32, 64));
}

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

TEST(ClientSharesTest, HeavyMeansOverTheMinimumRateAndItsShareOfRecentMisses) {
  FairShareOptions o;
  o.min_client_misses = 10;  // per second; the window is 1 s
  ClientShares s(o);
  bool untracked;
  absl::Time t = kT0;
  // A client alone is never heavy, whatever its rate (nobody to be fair to).
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(s.NoteMiss(7, t, &untracked));
  t += absl::Seconds(3);
  EXPECT_FALSE(s.NoteMiss(9, t, &untracked));
  EXPECT_EQ(s.tracked(), 1u);  // 7 is forgotten
  // A quiet client is never heavy below the minimum.
  for (int i = 0; i < 9; ++i) EXPECT_FALSE(s.NoteMiss(5, t, &untracked));
  // A flood passes the minimum and holds more than the average.
  bool heavy = false;
  for (int i = 0; i < 100; ++i) heavy = s.NoteMiss(6, t, &untracked);
  EXPECT_TRUE(heavy);
  EXPECT_FALSE(s.NoteMiss(5, t, &untracked));  // 10 misses: at the minimum, far below the average
  EXPECT_FALSE(untracked);
  // The sliding window: half a window later the previous bucket counts half.
  t += absl::Milliseconds(1500);
  EXPECT_NEAR(s.recent(6, t), 50, 1);
  // A client with nothing in the last two buckets is forgotten.
  t += absl::Seconds(2);
  EXPECT_EQ(s.recent(6, t), 0);
  EXPECT_EQ(s.tracked(), 0u);
}

TEST(ClientSharesTest, ClientsBeyondTheTableAreAccountedAsOne) {
  FairShareOptions o;
  o.max_clients = 3;
  o.min_client_misses = 5;
  ClientShares s(o);
  bool untracked = false;
  for (FlowId f = 10; f < 13; ++f) s.NoteMiss(f, kT0, &untracked);
  EXPECT_FALSE(untracked);
  // A spoofed-source flood: every packet a new address.
  bool heavy = false;
  for (FlowId f = 100; f < 200; ++f) heavy = s.NoteMiss(f, kT0, &untracked);
  EXPECT_TRUE(untracked);
  EXPECT_TRUE(heavy);  // together they are one heavy client
  EXPECT_EQ(s.tracked(), 4u);
  EXPECT_FALSE(s.NoteMiss(10, kT0, &untracked));  // the known ones are still themselves
}

TEST(ClientSharesTest, PendingShare) {
  FairShareOptions o;
  o.min_client_pending = 2;
  ClientShares s(o);
  for (int i = 0; i < 8; ++i) s.AddPending(1);
  s.AddPending(2);
  EXPECT_TRUE(s.OverPendingShare(1, 9));
  EXPECT_FALSE(s.OverPendingShare(2, 9));
  EXPECT_FALSE(s.OverPendingShare(3, 9));
  for (int i = 0; i < 8; ++i) s.RemovePending(1);
  EXPECT_EQ(s.pending_clients(), 1u);  // forgotten at zero: bounded by the open queries
}

// A zone whose queries the test answers.
class HeldTransport : public upstream::Transport {
 public:
  void Send(absl::Span<const uint8_t> query, upstream::Callback done) override {
    auto m = dns::ParseMessage(query);
    if (m->questions[0].type == dns::kTypeSOA) {
      probes.push_back({std::vector<uint8_t>(query.begin(), query.end()), std::move(done)});
    } else {
      sent.push_back({std::vector<uint8_t>(query.begin(), query.end()), std::move(done)});
    }
  }
  static void Answer(std::pair<std::vector<uint8_t>, upstream::Callback>& s) {
    dns::Message r = *dns::ParseMessage(s.first);
    r.flags |= dns::kFlagQR | dns::kFlagRA;
    if (r.questions[0].type != dns::kTypeSOA) {
      r.answers.push_back({r.questions[0].name, dns::kTypeA, dns::kClassIN, 300, "\x0a\x00\x00\x07"});
    }
    s.second(absl::OkStatus(), *dns::WriteMessage(r));
  }
  void AnswerAll() {
    while (!sent.empty()) {
      auto s = std::move(sent.front());
      sent.pop_front();
      Answer(s);
    }
  }
  std::deque<std::pair<std::vector<uint8_t>, upstream::Callback>> sent, probes;
};

class NullSink : public ReplySink {
 public:
  void SendReply(const ReplyTarget&, absl::Span<const uint8_t>) override { ++replies; }
  int replies = 0;
};

class ShedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cache_ = *cache::Cache::Create(cache::CacheOptions{});
    pool_options_.max_qps = 0;
    pool_options_.limiter.initial_limit = pool_options_.limiter.max_limit = 100000;
    options_.fair_share.min_client_misses = 20;
    options_.shed.backlog = 0.25;
    options_.shed.hold = absl::Seconds(1);
    pool_ = std::make_unique<upstream::UpstreamPool>(
        pool_options_, std::vector<upstream::UpstreamPool::ServerSpec>{{"held", &transport_}}, &clock_, &timers_,
        &counters_, 7);
    zone_.upstream = pool_.get();
    router_.AddZone(*dns::NameFromText("."), &zone_);
    resolver_ = std::make_unique<Resolver>(options_, cache_.get(), &router_, &clock_, &timers_, &counters_);
  }
  Resolver::Outcome Ask(const std::string& name, const char* from, bool tcp = false, uint16_t* rcode = nullptr) {
    auto q = testing::MakeQuery(name, dns::kTypeA);
    ReplyTarget to;
    to.sink = &sink_;
    to.peer = Addr(from);
    to.tcp = tcp;
    size_t n = 0;
    auto outcome = resolver_->HandleQuery(q.data(), q.size(), to, out_, sizeof(out_), &n);
    if (rcode != nullptr && outcome == Resolver::Outcome::kAnswered) *rcode = out_[3] & 0x0f;
    return outcome;
  }

  FakeClock clock_;
  TimerQueue timers_;
  AllCounters counters_;
  std::unique_ptr<cache::Cache> cache_;
  HeldTransport transport_;
  upstream::PoolOptions pool_options_;
  std::unique_ptr<upstream::UpstreamPool> pool_;
  upstream::Zone zone_;
  upstream::Router router_;
  ResolverOptions options_;
  NullSink sink_;
  std::unique_ptr<Resolver> resolver_;
  uint8_t out_[Resolver::kMaxAnswerSize];
};

TEST_F(ShedTest, OverloadedTheFloodingClientsMissesAreDroppedAndNobodyElsesQueries) {
  constexpr const char* kFlood = "10.0.0.66:5000";
  constexpr const char* kQuiet = "10.0.0.7:5000";
  // Cached before the flood, for both clients.
  EXPECT_EQ(Ask("known.example", kQuiet), Resolver::Outcome::kPending);
  transport_.AnswerAll();
  // Not overloaded: every miss goes upstream, the flood's too.
  for (int i = 0; i < 100; ++i) Ask("f" + std::to_string(i) + ".flood.example", kFlood);
  EXPECT_EQ(transport_.sent.size(), 100u);
  EXPECT_FALSE(resolver_->overloaded(clock_.Now()));
  // A receive queue a quarter full: overloaded for the hold.
  resolver_->NoteReceiveBacklog(100, 1000);
  EXPECT_FALSE(resolver_->overloaded(clock_.Now()));
  resolver_->NoteReceiveBacklog(250, 1000);
  EXPECT_TRUE(resolver_->overloaded(clock_.Now()));
  int dropped = 0;
  for (int i = 100; i < 200; ++i) {
    dropped += Ask("f" + std::to_string(i) + ".flood.example", kFlood) == Resolver::Outcome::kDropped;
  }
  EXPECT_EQ(dropped, 100);
  EXPECT_EQ(counters_.shed_dropped.load(), 100u);
  EXPECT_EQ(counters_.shed_overloaded.load(), 1u);
  EXPECT_EQ(transport_.sent.size(), 100u);  // no upstream work for them
  // The quiet client's misses go upstream, and everyone's hits are answered.
  for (int i = 0; i < 10; ++i) EXPECT_EQ(Ask("q" + std::to_string(i) + ".example", kQuiet), Resolver::Outcome::kPending);
  EXPECT_EQ(transport_.sent.size(), 110u);
  EXPECT_EQ(Ask("known.example", kFlood), Resolver::Outcome::kAnswered);
  EXPECT_EQ(Ask("known.example", kQuiet), Resolver::Outcome::kAnswered);
  // Over TCP the flood is told REFUSED rather than left waiting.
  uint16_t rcode = 0;
  EXPECT_EQ(Ask("tcp.flood.example", kFlood, true, &rcode), Resolver::Outcome::kAnswered);
  EXPECT_EQ(rcode, dns::kRefused);
  EXPECT_EQ(counters_.shed_refused.load(), 1u);
  // The hold ends without a new sign of overload: the flood's misses go
  // upstream again (the fair queue is what shares the upstream then).
  clock_.Advance(absl::Milliseconds(1001));
  EXPECT_FALSE(resolver_->overloaded(clock_.Now()));
  EXPECT_EQ(Ask("later.flood.example", kFlood), Resolver::Outcome::kPending);
  transport_.AnswerAll();
  EXPECT_EQ(resolver_->client_shares().pending_clients(), 0u);
}

TEST_F(ShedTest, ALoneClientIsNotShedAndAClientUnderTheMinimumRateNeither) {
  resolver_->NoteReceiveBacklog(900, 1000);
  // A pod starting up, alone: overloaded or not, its misses go upstream.
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(Ask("p" + std::to_string(i) + ".example", "10.0.0.9:1"), Resolver::Outcome::kPending);
  }
  // Beside it, a client asking 19 new names a second (the minimum is 20) is
  // not shed either; the pod, now heavy beside another client, is.
  for (int i = 0; i < 19; ++i) {
    EXPECT_EQ(Ask("q" + std::to_string(i) + ".example", "10.0.0.8:1"), Resolver::Outcome::kPending);
  }
  EXPECT_EQ(Ask("p100.example", "10.0.0.9:1"), Resolver::Outcome::kDropped);
}

TEST_F(ShedTest, PendingPressureCapsTheClientHoldingMostOpenQueries) {
  options_.max_pending = 100;
  options_.fair_share.pending_pressure = 0.5;
  options_.fair_share.min_client_pending = 8;
  options_.fair_share.min_client_misses = 1'000'000;  // no shedding: only the cap
  resolver_ = std::make_unique<Resolver>(options_, cache_.get(), &router_, &clock_, &timers_, &counters_);
  for (int i = 0; i < 50; ++i) Ask("f" + std::to_string(i) + ".flood.example", "10.0.0.66:1");
  EXPECT_EQ(resolver_->pending(), 50u);
  uint16_t rcode = 0;
  EXPECT_EQ(Ask("f50.flood.example", "10.0.0.66:1", false, &rcode), Resolver::Outcome::kAnswered);
  EXPECT_EQ(rcode, dns::kServFail);
  EXPECT_EQ(counters_.fair_share_refused.load(), 1u);
  EXPECT_EQ(Ask("q.example", "10.0.0.7:1"), Resolver::Outcome::kPending);  // another client still may
  EXPECT_EQ(resolver_->client_shares().pending_of(ClientFlow(Addr("10.0.0.7:1"), 32, 64)), 1u);
}

// Found by the simulation (seeds 1273, 2831): an expired name that a client
// waits for is refreshed in that client's flow, so a flood's queued misses
// do not hold it back until the client is answered stale.
TEST_F(ShedTest, ARefreshAClientWaitsForIsServedInTurnWithAFloodsQueuedMisses) {
  pool_options_.limiter.min_limit = 1;
  pool_options_.limiter.initial_limit = pool_options_.limiter.max_limit = 2;
  pool_ = std::make_unique<upstream::UpstreamPool>(
      pool_options_, std::vector<upstream::UpstreamPool::ServerSpec>{{"held", &transport_}}, &clock_, &timers_,
      &counters_, 7);
  zone_.upstream = pool_.get();
  constexpr const char* kFlood = "10.0.0.66:5000";
  constexpr const char* kQuiet = "10.0.0.7:5000";
  EXPECT_EQ(Ask("known.example", kQuiet), Resolver::Outcome::kPending);
  transport_.AnswerAll();
  clock_.Advance(absl::Seconds(301));  // expired (TTL 300), servable stale
  for (int i = 0; i < 50; ++i) Ask("f" + std::to_string(i) + ".flood.example", kFlood);
  ASSERT_EQ(transport_.sent.size(), 2u);  // the limit; 48 of the flood's misses wait
  uint64_t refreshes = counters_.refreshes.load();
  EXPECT_EQ(Ask("known.example", kQuiet), Resolver::Outcome::kPending);  // waits for the refresh
  EXPECT_EQ(counters_.refreshes.load(), refreshes + 1);
  for (int i = 0; i < 2; ++i) {  // two answers, two starts: round robin gives the quiet client one
    auto first = std::move(transport_.sent.front());
    transport_.sent.pop_front();
    HeldTransport::Answer(first);
  }
  bool refresh_sent = false;
  for (const auto& q : transport_.sent) {
    refresh_sent |= dns::ParseMessage(q.first)->questions[0].name == *dns::NameFromText("known.example");
  }
  EXPECT_TRUE(refresh_sent) << "the refresh still waits behind the flood's misses";
}

TEST_F(ShedTest, SheddingCanBeTurnedOff) {
  options_.shed.enabled = false;
  resolver_ = std::make_unique<Resolver>(options_, cache_.get(), &router_, &clock_, &timers_, &counters_);
  resolver_->NoteReceiveBacklog(1000, 1000);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(Ask("f" + std::to_string(i) + ".example", "10.0.0.66:1"), Resolver::Outcome::kPending);
  EXPECT_EQ(counters_.shed_dropped.load(), 0u);
}

}  // namespace
}  // namespace nodedns::resolver
