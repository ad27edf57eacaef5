#ifndef NODEDNS_TESTS_SIM_SIM_WORLD_H_
#define NODEDNS_TESTS_SIM_SIM_WORLD_H_

// The simulated world of sim.h: one nodedns (resolver generations over a
// shared cache), one simulated upstream server, simulated clients, and the
// invariant checks. Everything runs on one thread, on fake clocks, in the
// order of one TimerQueue: the same seed gives the same run.

#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "lib/cache/cache.h"
#include "lib/common/socket_address.h"
#include "lib/common/timer_queue.h"
#include "lib/config/config.h"
#include "lib/resolver/resolver.h"
#include "lib/upstream/pool.h"
#include "lib/upstream/router.h"
#include "tests/sim/sim.h"
#include "tests/support/all_counters.h"
#include "tests/support/fake_clock.h"

namespace nodedns::sim {

class World;

// The simulated server as one generation's transport reaches it. Answers
// follow the schedule's mode at each attempt, as UdpChannel sends them:
// attempt 1 at once, attempt 2 a timeout later, failure after 1 + 2 timeouts;
// an answer says which attempt it answers.
class SimTransport final : public upstream::Transport {
 public:
  explicit SimTransport(World* world) : world_(world) {}
  void Send(absl::Span<const uint8_t> query, upstream::Callback done) override;
  // Every query in flight gets Cancelled (a generation closing).
  void Shutdown();
  size_t inflight() const { return pending_.size(); }
  // Set before each answer is delivered (read only during the callback).
  upstream::AnswerTiming last_answer() const override { return last_answer_; }

 private:
  friend class World;
  upstream::AnswerTiming last_answer_;
  struct Pending {
    upstream::Callback done;
    TimerQueue::Id timer;
  };
  World* const world_;
  uint64_t next_id_ = 1;
  absl::flat_hash_map<uint64_t, Pending> pending_;
};

class World final : public resolver::ReplySink {
 public:
  explicit World(const Schedule& schedule);
  ~World() override;
  Result Run();

  void SendReply(const resolver::ReplyTarget& to, absl::Span<const uint8_t> answer) override;

 private:
  friend class SimTransport;
  struct Generation {
    std::unique_ptr<SimTransport> transport;
    std::unique_ptr<upstream::UpstreamPool> pool;
    upstream::Zone zone;
    upstream::Router router;
    std::unique_ptr<resolver::Resolver> resolver;
  };
  struct Name {
    std::string text;
    std::string wire;
    uint32_t ttl;
    bool nx;
    uint16_t version = 1;
  };
  // The last answer the upstream gave nodedns for a name: what its cache holds.
  struct Told {
    absl::Time at;
    uint32_t ttl;
    bool nx;
    uint16_t version;
  };
  // The well-behaved client and the flooder, each its own source address.
  enum Client : int { kGood = 0, kFlooder = 1, kClients = 2 };
  struct Outstanding {
    int name;                 // -1: one of the flooder's unique names
    absl::Time sent;
    bool had_data;            // an answer was cached when it was asked
    bool recovered;           // asked 2 s or more after the upstream answered again
    bool interrupted = false;  // a restart cut it short: only its answer is checked
    int client = kGood;
    bool flood = false;        // a flood ran when it was asked
  };

  // The upstream's behaviour at `t`: the mode in force and its latency.
  Mode ModeAt(absl::Time t, absl::Duration* latency) const;
  // Since when the upstream has answered without interruption at `t`, or
  // InfiniteFuture if it does not answer at `t`.
  absl::Time AnsweringSince(absl::Time t) const;
  void UpstreamSend(SimTransport* t, absl::Span<const uint8_t> query, upstream::Callback done);

  std::unique_ptr<Generation> NewGeneration(uint32_t seed);
  void CloseGeneration(std::unique_ptr<Generation> g);
  void Reload();
  void Restart();
  void ScheduleNextQuery();
  void Ask(int name, int client = kGood);
  // The flooder's next query (a unique name, now and then a catalogue name:
  // a cache hit, which must not be shed) and the one after it, until `until`.
  void Flood(absl::Time until, int rate, bool backlog);
  void OnAnswer(uint64_t id, absl::Span<const uint8_t> answer);
  void CheckStep();
  // Misses (queries without data to answer them) the well-behaved client
  // asked in the last two fair-share windows, `now` included: an upper bound
  // of what ClientShares counts for it.
  size_t RecentGoodMisses(absl::Time now);
  void Violation(const std::string& what);
  absl::Time Start() const { return start_; }

  const Schedule schedule_;
  const config::Config config_;
  FakeClock clock_;
  FakeWallClock wall_;
  TimerQueue timers_;
  AllCounters counters_;
  std::mt19937_64 rng_;
  std::unique_ptr<cache::Cache> cache_;
  std::deque<absl::Time> good_misses_;  // RecentGoodMisses
  std::unique_ptr<Generation> current_;
  std::vector<std::unique_ptr<Generation>> retired_;
  uint32_t generation_seed_ = 1;
  absl::Time start_;
  absl::Time end_;
  absl::Time restarted_at_ = absl::InfinitePast();
  std::vector<absl::Time> phase_start_;  // and one past the last: the end
  std::vector<Name> names_;
  std::vector<double> popularity_cdf_;  // over the catalogue (not the burst names)
  int next_burst_name_;
  std::vector<std::optional<Told>> told_;
  // Ordered by id, that is by the time asked: the oldest is the first.
  absl::btree_map<uint64_t, Outstanding> outstanding_;
  SocketAddress peers_[kClients];
  int floods_running_ = 0;
  uint64_t next_flood_name_ = 0;
  uint64_t next_query_id_ = 1;
  size_t upstream_inflight_ = 0;
  // Per phase: client and upstream queries, for the outage-load invariant.
  std::vector<uint64_t> phase_clients_, phase_upstream_;
  Result result_;
  uint8_t out_[resolver::Resolver::kMaxAnswerSize];
};

}  // namespace nodedns::sim

#endif  // NODEDNS_TESTS_SIM_SIM_WORLD_H_
