#ifndef NODEDNS_TESTS_SUPPORT_FAKE_CLOCK_H_
#define NODEDNS_TESTS_SUPPORT_FAKE_CLOCK_H_

// Clocks that only move when told to: tests age entries, fire timers and step
// the wall clock without sleeping. Thread-safe.

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "lib/common/clock.h"

namespace nodedns {

template <typename Interface>
class FakeClockOf final : public Interface {
 public:
  explicit FakeClockOf(absl::Time start = absl::FromUnixSeconds(1'700'000'000)) : now_(start) {}
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  void Set(absl::Time t) {
    absl::MutexLock lock(&mu_);
    now_ = t;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

// The data plane's clock (monotonic in production).
using FakeClock = FakeClockOf<SteadyClock>;
// The wall clock (snapshot deadlines); tests step it back and forth.
using FakeWallClock = FakeClockOf<WallClock>;

}  // namespace nodedns

#endif  // NODEDNS_TESTS_SUPPORT_FAKE_CLOCK_H_
