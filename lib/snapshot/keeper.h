#ifndef NODEDNS_LIB_SNAPSHOT_KEEPER_H_
#define NODEDNS_LIB_SNAPSHOT_KEEPER_H_

// The persistent cache over the daemon's life: the load at start-up (with the
// zones' stale limits), periodic writes and writes on demand on libuv's thread
// pool (one at a time; requests during a write wait for it and share its
// outcome), a synchronous write for a handover and at exit, and the
// statistics dnsctl and /metrics show. A failed write keeps the previous
// snapshot (snapshot::Write replaces the file only when the new one is
// complete) and is logged once per distinct error.
//
// Threading: the control loop's thread, except the write itself, which runs
// on the thread pool (the cache is thread-safe). Lifetime: Close() (waiters
// get Unavailable), let the loop run its close callbacks, then destroy; an
// asynchronous write still running holds the loop open until it is done.

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lib/cache/cache.h"
#include "lib/common/periodic_timer.h"
#include "lib/snapshot/snapshot.h"
#include "lib/snapshot/stats.h"

namespace nodedns::snapshot {

// A write and how long it took.
struct TimedWrite {
  absl::StatusOr<WriteResult> result = absl::UnknownError("not run");
  absl::Duration took;
};

class Keeper {
 public:
  using Done = std::function<void(const TimedWrite&)>;

  // `path` empty: snapshots off (Load and writes do nothing, WriteAsync
  // answers FailedPrecondition).
  Keeper(uv_loop_t* loop, cache::Cache* cache, std::string path);
  Keeper(const Keeper&) = delete;
  Keeper& operator=(const Keeper&) = delete;

  absl::Status Init();
  bool enabled() const { return !stats_.path.empty(); }

  // Loads the file into the cache, before the workers start. A damaged file
  // is moved aside (PATH.bad) and the cache starts empty.
  void Load(MaxStaleFn max_stale);
  // Periodic writes every `interval` (0 turns them off); a change keeps the
  // phase (PeriodicTimer).
  void SetInterval(absl::Duration interval);
  // On the thread pool; `done` (may be empty) runs on the loop's thread.
  void WriteAsync(Done done);
  // On this thread, now: for a successor's handover and the exit.
  TimedWrite WriteNow();
  // At the start of a shutdown: stops the timer; waiting and later requests
  // get Unavailable (WriteNow still writes, for the exit).
  void Close();

  const KeeperStats& stats() const { return stats_; }

 private:
  struct Work;
  void Record(const TimedWrite& write);
  void Finish(const TimedWrite& write);

  uv_loop_t* loop_;
  cache::Cache* cache_;
  KeeperStats stats_;
  PeriodicTimer timer_;
  bool running_ = false;
  bool closed_ = false;
  std::vector<Done> waiters_;
};

}  // namespace nodedns::snapshot

#endif  // NODEDNS_LIB_SNAPSHOT_KEEPER_H_
