// Serving through upstream outages (RFC 8767): the real binary, a fake
// upstream that breaks in one way per test, and a steady client load.
//
// Each test warms 1,000 names with a 2 s TTL, lets them expire, breaks the
// upstream, queries the cached names at a steady 500 qps for
// NODEDNS_OUTAGE_SECONDS (default 15), then restores the upstream and keeps
// querying. It asserts: every query answered NOERROR with the cached record;
// during the outage TTL 30 and EDE 3; no client waits beyond the start of the
// outage; the upstream sees about one query per name per failure-recheck
// period plus probes (not one per client query) and never more than max_qps;
// fresh answers resume within 2 s of the upstream's return.

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <thread>

#include "gtest/gtest.h"
#include "lib/dns/constants.h"
#include "tests/support/daemon_process.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/load_client.h"

namespace nodedns::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using Mode = FakeUpstream::Mode;

constexpr int kNames = 1000;
constexpr int kQps = 500;

struct Case {
  const char* name;
  Mode mode;
  int delay_ms;       // slow upstream
  bool flapping;      // alternate working and broken every 700 ms
  bool only_stale;    // every outage answer must be stale (TTL 30, EDE 3)
};

// What the test's name line prints for GetParam() (instead of its bytes).
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name << ": mode " << ModeName(c.mode) << " delay_ms " << c.delay_ms << (c.flapping ? " flapping" : "");
}

int OutageSeconds() {
  const char* env = std::getenv("NODEDNS_OUTAGE_SECONDS");
  return env ? std::max(3, std::atoi(env)) : 15;
}

class OutageTest : public ::testing::TestWithParam<Case> {};

TEST_P(OutageTest, KeepsAnsweringFromStaleAndProtectsTheUpstream) {
  const Case& c = GetParam();
  auto upstream = FakeUpstream::Start();
  ASSERT_NE(upstream, nullptr);
  upstream->set_ttl(2);
  // The default configuration: what users run.
  auto daemon = DaemonProcess::Start({"--upstream", upstream->address()});
  ASSERT_NE(daemon->port(), 0) << daemon->log();

  std::vector<std::string> names;
  for (int i = 0; i < kNames; ++i) names.push_back("h" + std::to_string(i) + ".outage.example");
  {
    LoadClient warm(daemon->port(), names, 400, milliseconds(kNames * 1000 / 400));
    warm.Join();
    for (const auto& r : warm.results()) ASSERT_EQ(r.rcode, dns::kNoError) << "warm-up failed";
  }
  std::this_thread::sleep_for(milliseconds(2200));  // every entry has expired

  // Break the upstream.
  auto outage_start = Clock::now();
  upstream->set_delay_ms(c.delay_ms);
  upstream->set_mode(c.mode);
  std::atomic<bool> stop_flapping{false};
  std::thread flapper;
  if (c.flapping) {
    flapper = std::thread([&] {
      bool broken = true;
      while (!stop_flapping) {
        std::this_thread::sleep_for(milliseconds(700));
        broken = !broken;
        upstream->set_mode(broken ? c.mode : Mode::kAnswer);
      }
    });
  }
  const int outage_ms = OutageSeconds() * 1000;
  LoadClient during(daemon->port(), names, kQps, milliseconds(outage_ms));
  during.Join();
  if (c.flapping) {
    stop_flapping = true;
    flapper.join();
  }
  auto outage_end = Clock::now();

  // Restore it, with a TTL that tells fresh answers apart.
  upstream->set_ttl(300);
  upstream->set_delay_ms(0);
  upstream->set_mode(Mode::kAnswer);
  auto restored = Clock::now();
  auto restored_wall = std::chrono::system_clock::now();
  LoadClient after(daemon->port(), names, kQps, milliseconds(5000));
  after.Join();

  // 1. Every outage query answered NOERROR with the cached record; stale ones
  //    carry TTL 30 and EDE 3.
  int stale = 0, waited = 0, slow_flap = 0;
  auto max_latency = std::chrono::microseconds(0);
  for (const auto& r : during.results()) {
    ASSERT_TRUE(r.answered) << "a query went unanswered during the outage";
    ASSERT_EQ(r.rcode, dns::kNoError);
    ASSERT_EQ(r.rdata, std::string("\xc0\x00\x02\x01", 4));
    bool is_stale = r.ttl == 30 && r.ede == dns::kEdeStaleAnswer;
    if (c.only_stale) {
      ASSERT_TRUE(is_stale) << "ttl " << r.ttl << " ede " << r.ede;
    } else {
      ASSERT_TRUE(is_stale || (r.ede == -1 && r.ttl <= 300));
    }
    stale += is_stale;
    // 2. Nobody waits beyond the first moments of the outage.
    // Flapping starts a new outage every other 700 ms: each start may make the
    // queries of its first moments wait the client timeout, no more. That is
    // 4 x the upstream's p99 latency, at least 50 ms: 50 ms with this fast
    // upstream on a quiet machine, ~120 ms on a loaded sanitizer build (the
    // first timeout then marks the zone degraded and releases every waiting
    // query at once). Counted below; max_latency bounds the worst.
    if (c.flapping) {
      slow_flap += r.latency() > milliseconds(90);
    } else if (r.sent > outage_start + milliseconds(300)) {
      EXPECT_LT(r.latency(), milliseconds(40))
          << "waited after the start of the outage: asked "
          << std::chrono::duration_cast<milliseconds>(r.sent - outage_start).count() << " ms into it";
    }
    if (r.latency() > milliseconds(10)) ++waited;
    max_latency = std::max(max_latency, r.latency());
  }
  EXPECT_GT(stale, 0);
  EXPECT_LT(max_latency, milliseconds(250));  // at most the client timeout
  // ~11 flap starts, each with ~25-60 queries in its first moments: a few
  // per cent at most wait beyond 90 ms. Every query doing so would mean
  // clients wait on a broken upstream beyond its outage's first moments.
  if (c.flapping) {
    EXPECT_LE(slow_flap, static_cast<int>(during.results().size()) / 20)
        << "queries waited beyond 90 ms at more than each flap's first moments";
  }
  if (!c.flapping) {
    EXPECT_LE(waited, 60) << "queries waited on the upstream at the start of the outage";
  }

  // 3. Upstream load during the outage: about one query per name per
  //    failure-recheck period (c-ares may retry once), plus probes.
  std::map<std::string, int> per_name;
  int probes = 0, total = 0;
  std::map<int64_t, int> per_second;
  for (const auto& q : upstream->log()) {
    if (q.at >= outage_start && q.at <= outage_end) {
      ++total;
      if (q.type == dns::kTypeSOA) {
        ++probes;
      } else {
        ++per_name[q.name];
      }
    }
    if (q.at >= outage_start && q.at <= outage_end) {
      per_second[std::chrono::duration_cast<std::chrono::seconds>(q.at - outage_start).count()]++;
    }
  }
  int client_queries = static_cast<int>(during.results().size());
  int worst = 0;
  for (auto& [name, n] : per_name) worst = std::max(worst, n);
  // Where refreshes only fail, a name is asked about once per failure-recheck
  // period (c-ares may send it twice). Slow or flapping upstreams answer some
  // refreshes, and a refreshed name with a 2 s TTL is legitimately asked again.
  if (c.only_stale) {
    EXPECT_LE(worst, 2 * (OutageSeconds() / 30 + 1)) << "a name was asked again within the failure-recheck period";
  }
  if (!c.flapping) {
    EXPECT_LT(total, client_queries / 20) << "upstream load above 5 % of the client rate";
    EXPECT_LE(probes, 2 * (OutageSeconds() + 1)) << "more than one probe per ~0.5 s";
  }
  // 4. Where the upstream only fails, no second of the outage sends it more
  //    than a tenth of the client rate (the first refreshes included).
  // A flapping or slow upstream answers some refreshes, and a name with a 2 s
  // TTL is then legitimately asked again: there, no more than the client rate.
  for (auto& [sec, n] : per_second) EXPECT_LE(n, c.only_stale ? kQps / 10 : kQps) << "second " << sec;

  // 5. Fresh answers resume within 2 s of the upstream's return, and then
  //    (nearly) everything is fresh.
  auto first_fresh = Clock::time_point::max();
  int late_total = 0, late_fresh = 0;
  for (const auto& r : after.results()) {
    ASSERT_TRUE(r.answered);
    ASSERT_EQ(r.rcode, dns::kNoError);
    bool fresh = r.ede == -1 && r.ttl > 30;
    if (fresh) first_fresh = std::min(first_fresh, r.received);
    if (r.sent > restored + milliseconds(3000)) {
      ++late_total;
      late_fresh += fresh;
    }
  }
  std::string probe_times;
  for (const auto& q : upstream->log()) {
    if (q.type == dns::kTypeSOA && q.at > restored - std::chrono::seconds(3)) {
      probe_times += " " + std::to_string(std::chrono::duration_cast<milliseconds>(q.at - restored).count());
    }
  }
  EXPECT_LE(first_fresh - restored, milliseconds(2000))
      << "probes received (ms after restore):" << probe_times << "\n"
      << "fresh answers did not resume within 2 s; restored at "
      << std::chrono::duration_cast<milliseconds>(restored_wall.time_since_epoch()).count() % 100000 << " ms\n"
      << daemon->log();
  EXPECT_GE(late_fresh * 100, late_total * 95) << late_fresh << " of " << late_total << " fresh";
  if (HasFailure()) std::cerr << "daemon log:\n" << daemon->log();
  EXPECT_EQ(daemon->Stop(), 0) << daemon->log();
  // The outage must not flood the log: breaker state changes (at most 4 a
  // minute per server, even when flapping) and nothing per query.
  std::string log = daemon->log();
  int loud = 0;
  for (size_t at = 0; (at = log.find("] [", at)) != std::string::npos; ++at) {
    loud += log.compare(at, 12, "] [warning] ") == 0 || log.compare(at, 10, "] [error] ") == 0;
  }
  EXPECT_LE(loud, 12) << log;
}

INSTANTIATE_TEST_SUITE_P(
    FailureModes, OutageTest,
    ::testing::Values(Case{"Blackhole", Mode::kDrop, 0, false, true},
                      Case{"Servfail", Mode::kServFail, 0, false, true},
                      Case{"Refused", Mode::kRefused, 0, false, true},
                      Case{"Slow3s", Mode::kAnswer, 3000, false, false},
                      Case{"Garbage", Mode::kGarbage, 0, false, true},
                      Case{"Flapping", Mode::kDrop, 0, true, false}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace nodedns::testing
