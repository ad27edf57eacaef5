#ifndef NODEDNS_TESTS_SIM_SIM_H_
#define NODEDNS_TESTS_SIM_SIM_H_

// Deterministic simulation of nodedns's resilience policy, in the manner of
// FoundationDB's simulator and TigerBeetle's VOPR: the real resolver,
// upstream pool, circuit breakers, concurrency limiter, cache and snapshot
// run on fake clocks against a simulated upstream whose behaviour follows a
// seeded random schedule (outages of every kind and length, bursts of new
// names, popular and rare names, reloads, restarts from the snapshot,
// wall-clock steps). Time jumps from one event to the next, so minutes of
// virtual time take milliseconds. After every step the invariants below are
// checked; a violation names the seed and the schedule, and Shrink() finds a
// smaller schedule that still fails.
//
// Invariants (README, "Resilience"):
//  1. a name whose answer is cached is answered with it (NOERROR with its
//     record, fresh or stale) for as long as max_stale allows;
//  2. no answer is presented as fresh past its TTL, nor with a TTL beyond
//     what is left of it; stale answers carry TTL 30 and EDE 3 (19 for NXDOMAIN);
//  3. once the upstream has answered again for 2 s (the bound) no
//     answer is stale or SERVFAIL;
//  4. queries a pool counts in flight stay within max_inflight (plus the
//     probes), and those at the server within twice that (queries presumed
//     lost after a later one came back no longer count, but may still be
//     retried by c-ares; a reload's old pool finishes its own); during a
//     long outage the upstream sees a small fraction of the client queries;
//  5. every query of the well-behaved client is answered (only the
//     flooder's misses may be dropped, by load shedding; they are counted),
//     and no client with stale data to fall back on waits past the largest
//     client timeout (plus a margin);
//  6. pending queries, queued queries, timers, and the per-client tables
//     (ClientShares' window and pending tables, the fair queue's flows)
//     stay bounded;
//  7. a flood does not starve the well-behaved client: while a flood runs
//     and the upstream has answered for 2 s (as in 3), none of its queries
//     is dropped or REFUSED (unless it is in a burst of its own: at least
//     min_client_misses misses in the last two fair-share windows, which
//     makes it heavy by the policy's definition; such drops are counted),
//     and at least 99 % of its misses get the
//     upstream's answer (NOERROR, or NXDOMAIN for an NXDOMAIN name);
//     invariant 3 asks more of it still: no SERVFAIL at all; cache hits of
//     either client are never shed (never dropped, never REFUSED). The
//     flooder's answers are not held to 3 (a SERVFAIL when its own queue
//     is full is the fair queue's design).

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace nodedns::sim {

enum class Mode : uint8_t { kHealthy, kBlackhole, kServfail, kRefused, kSlow, kFlapping, kLying };
const char* ModeName(Mode m);

// A stretch of time in which the upstream behaves one way.
struct Phase {
  Mode mode = Mode::kHealthy;
  absl::Duration length;
  absl::Duration latency = absl::Milliseconds(1);  // healthy answers
};

enum class EventKind : uint8_t { kBurst, kReload, kRestart, kWallStep, kFlood };
struct Event {
  EventKind kind;
  absl::Duration at;       // since the start
  int count = 0;           // kBurst: new names asked at once (spread over 0.5 s);
                           // kFlood: queries a second (Poisson)
  absl::Duration step;     // kWallStep; kFlood: how long it lasts
  // kFlood: the listener sees its socket's receive queue over the [shed]
  // backlog share while the flood runs (a worker falling behind), so the
  // worker counts as overloaded; otherwise only pending pressure does.
  bool backlog = false;
};

struct Schedule {
  uint64_t seed = 0;
  int names = 200;              // catalogue size
  double qps = 200;             // client query rate (Poisson)
  std::vector<Phase> phases;    // in order; the last is healthy
  std::vector<Event> events;
  bool wall_steps_off = false;  // replay without the wall-clock steps
  bool trace = false;           // record every answer in Result::trace
  std::string ToString() const;
};

// A random schedule for `seed`.
Schedule Generate(uint64_t seed);

struct Result {
  bool ok = true;
  std::string violation;  // the first one, with the virtual time
  // What happened, for the report and for the wall-clock comparison.
  uint64_t client_queries = 0;
  uint64_t upstream_queries = 0;
  uint64_t stale_answers = 0;
  uint64_t servfail_answers = 0;
  uint64_t answers_digest = 0;  // a hash of every answer and its time
  // The flooder's queries and what became of them, and the well-behaved
  // client's misses asked during a flood with the upstream answering
  // (invariant 7) and how many got the upstream's answer.
  // Upstream sends that found more than max_inflight (plus the probes) in
  // flight at the server: presumed-lost queries still out (invariant 4).
  uint64_t over_max_inflight = 0;
  uint64_t flood_queries = 0;
  uint64_t flood_dropped = 0;
  uint64_t flood_servfail = 0;
  uint64_t flood_refused = 0;
  uint64_t good_misses_in_flood = 0;
  uint64_t good_misses_in_flood_ok = 0;
  // Misses of the well-behaved client shed while it asked at least
  // min_client_misses a window itself (a burst of new names: heavy by the
  // policy's definition, beside the flooder).
  uint64_t good_shed_in_own_burst = 0;
  std::vector<std::string> trace;  // with Schedule::trace: one line per answer
};

Result Run(const Schedule& schedule);

// A smaller schedule (fewer phases and events) that still violates an
// invariant, by removing one element at a time while the run still fails.
Schedule Shrink(const Schedule& failing);

}  // namespace nodedns::sim

#endif  // NODEDNS_TESTS_SIM_SIM_H_
