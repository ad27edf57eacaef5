#ifndef NODEDNS_LIB_COMMON_TIMER_QUEUE_H_
#define NODEDNS_LIB_COMMON_TIMER_QUEUE_H_

// Deadlines on the injectable clock, for one loop thread. The worker arms one
// libuv timer for NextDeadline() and calls RunDue(clock.Now()) when it fires;
// tests advance a FakeClock and call RunDue themselves, so client timeouts,
// probes and prefetches are tested without sleeping.
//
// Threading: not thread-safe; owned by one loop thread.

#include <cstdint>
#include <map>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"

namespace nodedns {

class TimerQueue {
 public:
  using Id = uint64_t;
  // Called when the earliest deadline moves earlier (to re-arm a loop timer).
  using WakeupFn = absl::AnyInvocable<void(absl::Time)>;

  void set_wakeup(WakeupFn fn) { wakeup_ = std::move(fn); }

  Id Add(absl::Time deadline, absl::AnyInvocable<void()> fn) {
    Id id = next_id_++;
    bool earliest = timers_.empty() || deadline < timers_.begin()->first.first;
    timers_.emplace(std::make_pair(deadline, id), std::move(fn));
    index_.emplace(id, deadline);
    if (earliest && wakeup_) wakeup_(deadline);
    return id;
  }

  bool Cancel(Id id) {
    auto it = index_.find(id);
    if (it == index_.end()) return false;
    timers_.erase(std::make_pair(it->second, id));
    index_.erase(it);
    return true;
  }

  std::optional<absl::Time> NextDeadline() const {
    if (timers_.empty()) return std::nullopt;
    return timers_.begin()->first.first;
  }

  // Runs, in deadline order, every timer due at `now`, including timers that
  // callbacks add with a deadline <= now. Returns how many ran.
  int RunDue(absl::Time now) {
    int ran = 0;
    while (!timers_.empty() && timers_.begin()->first.first <= now) {
      auto node = timers_.extract(timers_.begin());
      index_.erase(node.key().second);
      node.mapped()();
      ++ran;
    }
    return ran;
  }

  size_t size() const { return timers_.size(); }

 private:
  std::map<std::pair<absl::Time, Id>, absl::AnyInvocable<void()>> timers_;
  absl::flat_hash_map<Id, absl::Time> index_;
  Id next_id_ = 1;
  WakeupFn wakeup_;
};

}  // namespace nodedns

#endif  // NODEDNS_LIB_COMMON_TIMER_QUEUE_H_
