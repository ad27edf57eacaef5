// The resilience policy under deterministic simulation (tests/sim/sim.h).
//
// NODEDNS_SIM_SEEDS (default 40) random schedules from NODEDNS_SIM_FIRST_SEED
// (default 1) run in the test suite; offline, run millions:
//   NODEDNS_SIM_SEEDS=1000000 NODEDNS_SIM_FIRST_SEED=1000 ./nodedns_policy_sim
// A failing seed is printed with its schedule and a shrunk schedule;
// NODEDNS_SIM_FIRST_SEED=<seed> NODEDNS_SIM_SEEDS=1 replays it.
// NODEDNS_SIM_KEEP_GOING=1 (offline batches): a failing seed is printed with
// its violation and schedule, unshrunk, and the run goes on to the next.

#include <cstdlib>
#include <fstream>
#include <iostream>

#include "gtest/gtest.h"
#include "tests/sim/sim.h"

namespace nodedns::sim {
namespace {

// The last lines of a traced replay of a failing schedule.
std::string Explain(const Schedule& failing) {
  Schedule traced = failing;
  traced.trace = true;
  Result r = sim::Run(traced);
  std::string out = "last events before the violation:\n";
  size_t from = r.trace.size() > 40 ? r.trace.size() - 40 : 0;
  for (size_t i = from; i < r.trace.size(); ++i) out += "  " + r.trace[i] + "\n";
  return out;
}

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

TEST(PolicySimulation, RandomSchedulesKeepEveryInvariant) {
  uint64_t first = EnvOr("NODEDNS_SIM_FIRST_SEED", 1);
  bool keep_going = EnvOr("NODEDNS_SIM_KEEP_GOING", 0) != 0;
  uint64_t failed = 0;
  uint64_t count = EnvOr("NODEDNS_SIM_SEEDS", 40);
  uint64_t queries = 0, upstream = 0, stale = 0, flood = 0, flood_dropped = 0, flood_servfail = 0, good_misses = 0,
           good_ok = 0, over = 0, good_burst_shed = 0;
  for (uint64_t seed = first; seed < first + count; ++seed) {
    Schedule s = Generate(seed);
    // NODEDNS_SIM_TRACE=FILE: every answer and upstream query of the run in FILE.
    const char* trace_file = std::getenv("NODEDNS_SIM_TRACE");
    s.trace = trace_file != nullptr;
    Result r = sim::Run(s);
    if (trace_file) {
      std::ofstream out(trace_file);
      for (const std::string& line : r.trace) out << line << "\n";
      s.trace = false;
    }
    queries += r.client_queries;
    upstream += r.upstream_queries;
    stale += r.stale_answers;
    flood += r.flood_queries;
    flood_dropped += r.flood_dropped;
    flood_servfail += r.flood_servfail;
    good_misses += r.good_misses_in_flood;
    good_ok += r.good_misses_in_flood_ok;
    good_burst_shed += r.good_shed_in_own_burst;
    over += r.over_max_inflight;
    if (!r.ok && keep_going) {
      ++failed;
      ADD_FAILURE() << "invariant violated " << r.violation << "\n" << s.ToString();
      continue;
    }
    if (!r.ok) {
      Schedule small = Shrink(s);
      FAIL() << "invariant violated " << r.violation << "\n" << s.ToString() << "\nshrunk to (it fails with "
             << sim::Run(small).violation << "):\n" << small.ToString() << "\n" << Explain(small);
    }
    // A step of the wall clock changes nothing: the same run without the
    // steps gives the same answers at the same moments.
    bool steps = false;
    for (const Event& e : s.events) steps |= e.kind == EventKind::kWallStep;
    if (steps) {
      Schedule calm = s;
      calm.wall_steps_off = true;
      Result c = sim::Run(calm);
      ASSERT_TRUE(c.ok) << c.violation << "\n" << calm.ToString();
      if (c.answers_digest != r.answers_digest) {
        Schedule traced = s;
        traced.trace = calm.trace = true;
        Result a = sim::Run(traced), b = sim::Run(calm);
        size_t i = 0;
        while (i < a.trace.size() && i < b.trace.size() && a.trace[i] == b.trace[i]) ++i;
        ADD_FAILURE() << "the wall-clock steps changed answers, first at answer " << i << ": "
                      << (i < a.trace.size() ? a.trace[i] : "(none)") << " instead of "
                      << (i < b.trace.size() ? b.trace[i] : "(none)") << "\n" << s.ToString();
      }
    }
  }
  if (failed) std::cout << failed << " of " << count << " schedules failed; all of them:\n";
  std::cout << count << " schedules, " << queries << " client queries (" << flood << " of them a flooder's: "
            << flood_dropped << " shed, " << flood_servfail << " SERVFAIL), " << upstream << " upstream queries, " << stale
            << " stale answers; in floods with the upstream answering, " << good_ok << " of " << good_misses
            << " misses of the well-behaved client answered (and " << good_burst_shed
            << " shed during its own bursts); " << over
            << " upstream sends over max_inflight at the server (presumed lost still out)"
            << (failed ? "\n" : ": every invariant held\n");
}

// The three scenarios of issue 9, as schedules (the integration tests run
// them against the real binary too).
TEST(PolicySimulation, ShortOutageWithoutABreakerRecoversWithinTwoSeconds) {
  for (Mode m : {Mode::kBlackhole, Mode::kServfail}) {
    Schedule s;
    s.seed = 9;
    s.names = 1;  // one name, asked four times a second
    s.qps = 4;
    s.phases = {{Mode::kHealthy, absl::Seconds(10), absl::Milliseconds(1)},
                {m, absl::Seconds(6), absl::Milliseconds(1)},
                {Mode::kHealthy, absl::Seconds(30), absl::Milliseconds(1)}};
    Result r = sim::Run(s);
    EXPECT_TRUE(r.ok) << r.violation << "\n" << s.ToString() << "\n" << (r.ok ? "" : Explain(s));
    EXPECT_GT(r.stale_answers, 0u) << ModeName(m);  // the outage was served stale
  }
}

TEST(PolicySimulation, ColdBurstIsAnsweredAndNothingIsRefused) {
  Schedule s;
  s.seed = 10;
  s.names = 10;
  s.qps = 10;
  s.phases = {{Mode::kHealthy, absl::Seconds(5), absl::Milliseconds(2)},
              {Mode::kHealthy, absl::Seconds(10), absl::Milliseconds(2)}};
  s.events = {{EventKind::kBurst, absl::Seconds(3), 10000, {}}};  // 10,000 new names in 0.5 s
  Result r = sim::Run(s);
  EXPECT_TRUE(r.ok) << r.violation;
  EXPECT_EQ(r.servfail_answers, 0u);
}

// Invariant 7 on purpose: a flood of unique names from a second client, the
// listener reporting a receive backlog (so the worker is overloaded and the
// flooder heavy), while the well-behaved client asks its names and a burst of
// new ones; then a flood over an outage and its recovery.
TEST(PolicySimulation, FloodOfUniqueNamesDoesNotStarveTheOtherClient) {
  Schedule s;
  s.seed = 12;
  s.names = 100;
  s.qps = 100;
  s.phases = {{Mode::kHealthy, absl::Seconds(10), absl::Milliseconds(2)},
              {Mode::kBlackhole, absl::Seconds(5), absl::Milliseconds(1)},
              {Mode::kHealthy, absl::Seconds(15), absl::Milliseconds(2)}};
  s.events = {{EventKind::kFlood, absl::Seconds(2), 10000, absl::Seconds(4), true},
              {EventKind::kBurst, absl::Seconds(4), 300, {}},
              {EventKind::kFlood, absl::Seconds(13), 5000, absl::Seconds(5), false}};
  Result r = sim::Run(s);
  EXPECT_TRUE(r.ok) << r.violation << "\n" << s.ToString() << "\n" << (r.ok ? "" : Explain(s));
  EXPECT_GT(r.flood_dropped, 0u);          // the flood was shed
  EXPECT_GT(r.good_misses_in_flood, 300u);  // the burst was asked during it
  EXPECT_EQ(r.good_misses_in_flood_ok, r.good_misses_in_flood);
}

TEST(PolicySimulation, ReloadsAndRestartsInTheMiddleOfAnOutage) {
  Schedule s;
  s.seed = 11;
  s.names = 100;
  s.qps = 100;
  s.phases = {{Mode::kHealthy, absl::Seconds(20), absl::Milliseconds(1)},
              {Mode::kBlackhole, absl::Seconds(40), absl::Milliseconds(1)},
              {Mode::kHealthy, absl::Seconds(20), absl::Milliseconds(1)}};
  for (int i = 0; i < 6; ++i) s.events.push_back({EventKind::kReload, absl::Seconds(25 + 5 * i), 0, {}});
  s.events.push_back({EventKind::kRestart, absl::Seconds(33), 0, {}});
  s.events.push_back({EventKind::kWallStep, absl::Seconds(30), 0, absl::Hours(-1)});
  s.events.push_back({EventKind::kRestart, absl::Seconds(50), 0, {}});
  Result r = sim::Run(s);
  EXPECT_TRUE(r.ok) << r.violation;
}

}  // namespace
}  // namespace nodedns::sim

