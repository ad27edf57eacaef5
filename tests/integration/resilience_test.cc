// The resilience policy end to end (issue 9): the real nodedns with its
// DEFAULT configuration against a fake upstream the test breaks and mends:
// a cold burst, a short outage that opens no breaker, a reload and a restart
// in the middle of an outage, and steps of the wall clock (libfaketime,
// stepping only CLOCK_REALTIME) while the upstream is down.

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "gtest/gtest.h"
#include "lib/dns/constants.h"
#include "tests/support/daemon_process.h"
#include "tests/support/dns_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/load_client.h"

namespace nodedns::testing {
namespace {

using Clock = std::chrono::steady_clock;
using Mode = FakeUpstream::Mode;
using nlohmann::json;
using std::chrono::milliseconds;

// The thread-safe variant: every worker thread reads the clocks.
constexpr char kFakeTime[] = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

std::vector<std::string> Names(const std::string& prefix, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i) + ".example");
  return out;
}

json Stats(DaemonProcess& d) {
  std::string out;
  EXPECT_EQ(d.Dnsctl({"--json", "stats"}, &out), 0) << out;
  return json::parse(out, nullptr, false);
}

// Polls (bounded) until every upstream server's breaker is open.
bool WaitForOpenBreaker(DaemonProcess& d, int seconds = 10) {
  auto deadline = Clock::now() + std::chrono::seconds(seconds);
  while (Clock::now() < deadline) {
    json s = Stats(d);
    if (!s.is_discarded() && !s["upstreams"].empty() && s["upstreams"][0]["state"] == "open") return true;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return false;
}

int Count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t at = 0; (at = haystack.find(needle, at)) != std::string::npos; at += needle.size()) ++n;
  return n;
}

class ResilienceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    upstream_ = FakeUpstream::Start();
    ASSERT_NE(upstream_, nullptr);
  }
  // The default configuration, with only the upstream (and any flags) given.
  void StartDaemon(std::vector<std::string> extra = {}, std::vector<std::string> env = {}) {
    DaemonProcess::Options o;
    o.args = {"--upstream", upstream_->address()};
    o.args.insert(o.args.end(), extra.begin(), extra.end());
    o.env = std::move(env);
    daemon_ = DaemonProcess::Start(o);
    ASSERT_NE(daemon_->port(), 0) << daemon_->log();
  }
  void TearDown() override {
    if (daemon_) {
      EXPECT_EQ(daemon_->Stop(), 0) << daemon_->log();
    }
  }
  std::unique_ptr<FakeUpstream> upstream_;
  std::unique_ptr<DaemonProcess> daemon_;
};

// 1. A fresh nodedns in front of a healthy upstream gets bursts of distinct
// names (pods starting on a node): at least 99 % are answered NOERROR, and
// nothing is cached as SERVFAIL (asked again, every one is answered NOERROR
// and only the ones that failed go upstream again). The sanitizer build of
// the daemon sustains about 3,000 misses a second on two cores; 2,500 is above the old
// fixed cap; bench/cold_burst.sh measures 10,000 names at 20,000 qps with the
// Release build, beside Unbound.
TEST_F(ResilienceTest, AColdBurstIsAnsweredAndNoRefusalIsCached) {
  const int kBurstQps = std::getenv("NODEDNS_BURST_QPS") ? std::atoi(std::getenv("NODEDNS_BURST_QPS")) : 2500;
  StartDaemon();
  // The small case first: 1,000 names at 5,000 qps left 402 uncached.
  auto small = Names("small", 1000);
  LoadClient first(daemon_->port(), small, 5000, milliseconds(200));
  first.Join();
  int small_noerror = 0;
  for (const auto& r : first.results()) small_noerror += r.answered && r.rcode == dns::kNoError;
  EXPECT_GE(small_noerror, 990);
  auto names = Names("cold", 10000);
  LoadClient burst(daemon_->port(), names, kBurstQps, milliseconds(10000 * 1000 / kBurstQps));
  burst.Join();
  int noerror = 0;
  for (const auto& r : burst.results()) noerror += r.answered && r.rcode == dns::kNoError;
  std::string up;
  daemon_->Dnsctl({"upstreams"}, &up);
  EXPECT_GE(noerror, 9900) << "of 10000 NOERROR; " << up;
  int upstream_before = upstream_->queries();
  LoadClient again(daemon_->port(), names, 5000, milliseconds(2000));
  again.Join();
  int noerror_again = 0;
  for (const auto& r : again.results()) noerror_again += r.answered && r.rcode == dns::kNoError;
  EXPECT_EQ(noerror_again, 10000);
  // What was answered NOERROR came from the cache; what was not went upstream
  // again instead of being a cached SERVFAIL.
  EXPECT_LE(upstream_->queries() - upstream_before, 10000 - noerror);
  json s = Stats(*daemon_);
  EXPECT_EQ(s["counters"]["servfail_cached"], 0);
  EXPECT_EQ(s["counters"]["upstream_refused_cap"], 0);
}

// 2. One name asked every 250 ms, the upstream blackholed (or SERVFAIL) for
// 6 s: three consecutive failures never happen for one name at that rate, so
// no breaker need open. Fresh answers must resume within 2 s of the return.
class ShortOutageTest : public ResilienceTest, public ::testing::WithParamInterface<Mode> {};

TEST_P(ShortOutageTest, FreshAnswersResumeWithinTwoSecondsOfTheReturn) {
  upstream_->set_ttl(2);
  StartDaemon();
  auto start = Clock::now();
  // 2 s healthy, 6 s outage, 6 s after: 14 s at 4 qps.
  LoadClient client(daemon_->port(), {"one.example"}, 4, milliseconds(14000));
  std::this_thread::sleep_until(start + milliseconds(2000));
  auto outage_start = Clock::now();
  upstream_->set_mode(GetParam());
  std::this_thread::sleep_until(start + milliseconds(8000));
  upstream_->set_ttl(300);  // tells fresh answers apart
  upstream_->set_mode(Mode::kAnswer);
  auto restored = Clock::now();
  client.Join();
  auto first_fresh = Clock::time_point::max();
  int stale = 0;
  for (const auto& r : client.results()) {
    ASSERT_TRUE(r.answered);
    ASSERT_EQ(r.rcode, dns::kNoError) << "every answer from the cache, sent "
                                      << std::chrono::duration_cast<milliseconds>(r.sent - start).count() << " ms in";
    stale += r.ede == dns::kEdeStaleAnswer;
    if (r.sent >= restored && r.ttl > 30) first_fresh = std::min(first_fresh, r.received);
    if (r.sent > restored + milliseconds(2000)) {
      EXPECT_GT(r.ttl, 30u) << "stale " << std::chrono::duration_cast<milliseconds>(r.sent - restored).count()
                            << " ms after the upstream returned";
    }
  }
  EXPECT_GT(stale, 0);  // the outage was served stale
  EXPECT_LE(first_fresh - restored, milliseconds(2000));
  EXPECT_LT(outage_start, restored);
  json s = Stats(*daemon_);
  std::cerr << "breakers opened: " << s["counters"]["breaker_opened"] << ", zone probes: "
            << s["counters"]["zone_probes_sent"] << "\n";
}

INSTANTIATE_TEST_SUITE_P(Modes, ShortOutageTest, ::testing::Values(Mode::kDrop, Mode::kServFail),
                         [](const ::testing::TestParamInfo<Mode>& i) {
                           return std::string(i.param == Mode::kDrop ? "Blackhole" : "Servfail");
                         });

// 3. A reload with an unchanged configuration in the middle of a blackhole
// keeps what the upstream has shown: the breaker stays open (misses fail at
// once, stale answers do not wait) and "breaker open" is not logged again.
TEST_F(ResilienceTest, AReloadDuringAnOutageKeepsTheBreakerOpen) {
  upstream_->set_ttl(1);
  StartDaemon({"--log-level", "info"});
  auto names = Names("r", 50);
  for (const auto& n : names) ASSERT_TRUE(UdpExchange("127.0.0.1", daemon_->port(), MakeQuery(n, dns::kTypeA)));
  upstream_->set_mode(Mode::kDrop);
  std::this_thread::sleep_for(milliseconds(1100));
  LoadClient during(daemon_->port(), names, 100, milliseconds(1000));
  during.Join();
  ASSERT_TRUE(WaitForOpenBreaker(*daemon_)) << daemon_->log();
  int opened_before = Count(daemon_->log(), "breaker open");
  std::string out;
  ASSERT_EQ(daemon_->Dnsctl({"reload"}, &out), 0) << out;
  auto t0 = Clock::now();
  auto miss = UdpExchange("127.0.0.1", daemon_->port(), MakeQuery("never-asked.example", dns::kTypeA), 5000);
  auto miss_took = Clock::now() - t0;
  ASSERT_TRUE(miss);
  EXPECT_EQ(Parse(*miss).rcode(), dns::kServFail);
  EXPECT_LT(miss_took, milliseconds(200)) << "the reload forgot the upstream is down";
  LoadClient after(daemon_->port(), names, 200, milliseconds(1000));
  after.Join();
  std::vector<int64_t> latency;
  for (const auto& r : after.results()) {
    ASSERT_EQ(r.rcode, dns::kNoError);
    EXPECT_EQ(r.ede, dns::kEdeStaleAnswer);
    latency.push_back(r.latency().count());
  }
  std::sort(latency.begin(), latency.end());
  EXPECT_LT(latency[latency.size() * 99 / 100], 50'000) << "p99 of stale answers after the reload (us)";
  json u = json::parse([&] {
    std::string o;
    daemon_->Dnsctl({"--json", "upstreams"}, &o);
    return o;
  }(), nullptr, false);
  EXPECT_EQ(u["upstreams"][0]["state"], "open");
  EXPECT_EQ(Count(daemon_->log(), "breaker open"), opened_before) << daemon_->log();
}

// 4. Restarted from its snapshot while the upstream is down, nodedns answers
// every cached name stale at once: it starts degraded, and the first probe
// decides, instead of making each client wait a start-up client timeout.
TEST_F(ResilienceTest, ARestartDuringAnOutageAnswersAtOnce) {
  TempDir dir;
  std::string snap = dir.path() + "/cache.snap";
  upstream_->set_ttl(1);
  StartDaemon({"--snapshot", snap});
  auto names = Names("s", 1000);
  LoadClient warm(daemon_->port(), names, 2000, milliseconds(500));
  warm.Join();
  ASSERT_EQ(daemon_->Stop(), 0) << daemon_->log();
  upstream_->set_mode(Mode::kDrop);
  std::this_thread::sleep_for(milliseconds(1100));  // every entry has expired
  StartDaemon({"--snapshot", snap});
  LoadClient client(daemon_->port(), names, 2000, milliseconds(500));
  client.Join();
  std::vector<int64_t> latency;
  for (const auto& r : client.results()) {
    ASSERT_TRUE(r.answered);
    ASSERT_EQ(r.rcode, dns::kNoError);
    EXPECT_EQ(r.ede, dns::kEdeStaleAnswer);
    latency.push_back(r.latency().count());
  }
  std::sort(latency.begin(), latency.end());
  EXPECT_LT(latency[latency.size() * 99 / 100], 50'000) << "p99 (us) right after the restart";
}

// 5. The wall clock is stepped an hour back, then an hour forward, while the
// upstream is down and the breaker open. Only CLOCK_REALTIME moves
// (libfaketime with FAKETIME_DONT_FAKE_MONOTONIC): expired entries stay
// stale, none is dropped, and the breaker's probes find the upstream's return.
class WallClockStepTest : public ResilienceTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(WallClockStepTest, ChangesNoAnswerAndStallsNoRecovery) {
  if (access(kFakeTime, R_OK) != 0) GTEST_SKIP() << "libfaketime (Debian: faketime) is not installed";
  TempDir dir;
  std::string spec = dir.Write("faketime", "+0\n");
  upstream_->set_ttl(2);
  StartDaemon({}, {std::string("LD_PRELOAD=") + kFakeTime, "FAKETIME_DONT_FAKE_MONOTONIC=1",
                   "FAKETIME_TIMESTAMP_FILE=" + spec, "FAKETIME_CACHE_DURATION=1",
                   // libfaketime comes before ASan's runtime in a sanitizer build
                   "ASAN_OPTIONS=verify_asan_link_order=0"});
  auto names = Names("w", 100);
  for (const auto& n : names) ASSERT_TRUE(UdpExchange("127.0.0.1", daemon_->port(), MakeQuery(n, dns::kTypeA)));
  upstream_->set_mode(Mode::kDrop);
  std::this_thread::sleep_for(milliseconds(2100));  // expired
  LoadClient breaking(daemon_->port(), names, 100, milliseconds(1000));
  breaking.Join();
  ASSERT_TRUE(WaitForOpenBreaker(*daemon_)) << daemon_->log();
  std::string before = Stats(*daemon_)["time"];
  dir.Write("faketime", std::string(GetParam()) + "\n");
  // libfaketime re-reads the file about once a second: wait (bounded) until
  // the daemon's wall clock shows the step.
  std::string after_step = before;
  for (int i = 0; i < 50 && after_step.substr(0, 13) == before.substr(0, 13); ++i) {
    std::this_thread::sleep_for(milliseconds(100));
    after_step = Stats(*daemon_)["time"];
  }
  ASSERT_NE(before.substr(0, 13), after_step.substr(0, 13)) << "the step never took effect";
  std::cerr << "wall clock of the daemon: " << before << " -> " << after_step << "\n";
  LoadClient during(daemon_->port(), names, 200, milliseconds(4000));
  during.Join();
  for (const auto& r : during.results()) {
    ASSERT_TRUE(r.answered);
    ASSERT_EQ(r.rcode, dns::kNoError) << "an entry was dropped";
    ASSERT_EQ(r.ede, dns::kEdeStaleAnswer) << "an expired entry was served as fresh, TTL " << r.ttl;
    ASSERT_EQ(r.ttl, 30u);
  }
  upstream_->set_ttl(300);
  upstream_->set_mode(Mode::kAnswer);
  auto restored = Clock::now();
  LoadClient recovery(daemon_->port(), names, 200, milliseconds(4000));
  recovery.Join();
  auto first_fresh = Clock::time_point::max();
  for (const auto& r : recovery.results()) {
    ASSERT_EQ(r.rcode, dns::kNoError);
    if (r.ttl > 30) first_fresh = std::min(first_fresh, r.received);
  }
  EXPECT_LE(first_fresh - restored, milliseconds(2000)) << "no fresh answer within 2 s after the step";
}

INSTANTIATE_TEST_SUITE_P(Steps, WallClockStepTest, ::testing::Values("-1h", "+1h"),
                         [](const ::testing::TestParamInfo<const char*>& i) {
                           return std::string(i.param[0] == '-' ? "Back" : "Forward");
                         });

}  // namespace
}  // namespace nodedns::testing
