#ifndef NODEDNS_LIB_COMMON_CLOCK_H_
#define NODEDNS_LIB_COMMON_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace nodedns {

// Source of wall-clock time. Cache deadlines are absolute wall-clock times so
// that they survive a restart (snapshot), hence wall clock and not monotonic.
// Implementations must be thread-safe: every worker thread reads the clock.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// The real clock. A process-wide singleton that is never destroyed.
class SystemClock final : public Clock {
 public:
  static SystemClock* Get();
  absl::Time Now() const override { return absl::Now(); }
};

// A clock that only moves when told to; tests use it to age entries without
// sleeping. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000)) : now_(start) {}
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

}  // namespace nodedns

#endif  // NODEDNS_LIB_COMMON_CLOCK_H_
