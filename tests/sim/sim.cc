#include "tests/sim/sim.h"

#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "tests/sim/sim_world.h"

namespace nodedns::sim {

const char* ModeName(Mode m) {
  switch (m) {
    case Mode::kHealthy: return "healthy";
    case Mode::kBlackhole: return "blackhole";
    case Mode::kServfail: return "servfail";
    case Mode::kRefused: return "refused";
    case Mode::kSlow: return "slow";
    case Mode::kFlapping: return "flapping";
    case Mode::kLying: return "nxdomain-while-recovering";
  }
  return "?";
}

std::string Schedule::ToString() const {
  std::string s = absl::StrCat("seed ", seed, ": ", names, " names at ", qps, " qps", wall_steps_off ? " (no wall steps)" : "",
                               "\n  upstream:");
  absl::Duration t;
  for (const Phase& p : phases) {
    absl::StrAppend(&s, "\n    at ", absl::FormatDuration(t), " ", ModeName(p.mode), " for ", absl::FormatDuration(p.length));
    if (p.mode == Mode::kHealthy || p.mode == Mode::kFlapping) absl::StrAppend(&s, " (", absl::FormatDuration(p.latency), ")");
    t += p.length;
  }
  if (!events.empty()) absl::StrAppend(&s, "\n  events:");
  for (const Event& e : events) {
    absl::StrAppend(&s, "\n    at ", absl::FormatDuration(e.at), " ");
    switch (e.kind) {
      case EventKind::kBurst: absl::StrAppend(&s, "burst of ", e.count, " new names"); break;
      case EventKind::kReload: absl::StrAppend(&s, "reload"); break;
      case EventKind::kRestart: absl::StrAppend(&s, "restart from the snapshot"); break;
      case EventKind::kWallStep: absl::StrAppend(&s, "wall clock stepped by ", absl::FormatDuration(e.step)); break;
      case EventKind::kFlood:
        absl::StrAppend(&s, "flood of unique names from a second client, ", e.count, " qps for ", absl::FormatDuration(e.step),
                        e.backlog ? " (the socket backlog says overloaded)" : "");
        break;
    }
  }
  return s;
}

Schedule Generate(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto uniform = [&rng](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
  auto seconds = [&uniform](double lo, double hi) { return absl::Milliseconds(static_cast<int64_t>(uniform(lo, hi) * 1000)); };
  Schedule s;
  s.seed = seed;
  s.names = static_cast<int>(uniform(50, 400));
  s.qps = static_cast<int>(uniform(20, 200));
  s.phases.push_back({Mode::kHealthy, seconds(10, 30), seconds(0.0002, 0.005)});
  int phases = static_cast<int>(uniform(2, 7));
  for (int i = 0; i < phases; ++i) {
    double r = uniform(0, 1);
    Mode m = r < 0.30 ? Mode::kHealthy
             : r < 0.50 ? Mode::kBlackhole
             : r < 0.65 ? Mode::kServfail
             : r < 0.70 ? Mode::kRefused
             : r < 0.80 ? Mode::kSlow
             : r < 0.90 ? Mode::kFlapping
                        : Mode::kLying;
    // Half of the outages short (a few seconds: no breaker need open), half long.
    absl::Duration length = uniform(0, 1) < 0.5 ? seconds(1, 8) : seconds(10, 60);
    s.phases.push_back({m, length, m == Mode::kFlapping ? seconds(0.0003, 0.003) : seconds(0.0002, 0.005)});
  }
  s.phases.push_back({Mode::kHealthy, seconds(15, 25), seconds(0.0002, 0.005)});
  absl::Duration total;
  for (const Phase& p : s.phases) total += p.length;
  auto at = [&]() { return seconds(1, absl::ToDoubleSeconds(total) - 1); };
  for (int i = static_cast<int>(uniform(0, 4)); i > 0; --i) {
    s.events.push_back({EventKind::kBurst, at(), static_cast<int>(uniform(100, 1500)), {}});
  }
  for (int i = static_cast<int>(uniform(0, 5)); i > 0; --i) s.events.push_back({EventKind::kReload, at(), 0, {}});
  for (int i = static_cast<int>(uniform(0, 3)); i > 0; --i) s.events.push_back({EventKind::kRestart, at(), 0, {}});
  static constexpr int kStepsHours[] = {-24, -1, 1, 24};
  for (int i = static_cast<int>(uniform(0, 5)); i > 0; --i) {
    s.events.push_back({EventKind::kWallStep, at(), 0, absl::Hours(kStepsHours[rng() % 4])});
  }
  // Floods last, so that the rest of a seed's schedule is what it was before
  // they existed. About one schedule in seven has one (or two): a second
  // client asks unique names at 2,000-20,000 qps (log-uniform) for 2-8 s,
  // over whatever the upstream and the first client do then (the fairness
  // window is one second). Each is tens of thousands of queries, more than
  // the rest of a schedule: rates and share keep the suite's 40 seeds quick.
  if (uniform(0, 1) < 0.15) {
    for (int i = uniform(0, 1) < 0.8 ? 1 : 2; i > 0; --i) {
      absl::Duration from = at();
      int rate = static_cast<int>(std::exp(uniform(std::log(2000.0), std::log(20000.0))));
      absl::Duration length = seconds(2, 8);
      bool backlog = uniform(0, 1) < 0.5;
      s.events.push_back({EventKind::kFlood, from, rate, length, backlog});
    }
  }
  return s;
}

Result Run(const Schedule& schedule) {
  World world(schedule);
  return world.Run();
}

Schedule Shrink(const Schedule& failing) {
  Schedule best = failing;
  bool progress = true;
  while (progress) {
    progress = false;
    for (size_t i = 0; i < best.events.size(); ++i) {
      Schedule s = best;
      s.events.erase(s.events.begin() + static_cast<long>(i));
      if (!Run(s).ok) {
        best = s;
        progress = true;
        break;
      }
    }
    if (progress) continue;
    // Phases, the last healthy one always kept (recovery is checked there).
    for (size_t i = 0; i + 1 < best.phases.size(); ++i) {
      Schedule s = best;
      s.phases.erase(s.phases.begin() + static_cast<long>(i));
      if (!Run(s).ok) {
        best = s;
        progress = true;
        break;
      }
    }
  }
  return best;
}

}  // namespace nodedns::sim
