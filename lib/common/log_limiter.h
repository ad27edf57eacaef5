#ifndef NODEDNS_LIB_COMMON_LOG_LIMITER_H_
#define NODEDNS_LIB_COMMON_LOG_LIMITER_H_

// Keeps a repeated log line from flooding the disk during an outage: at most
// `burst` lines per `interval`; the next line allowed afterwards reports how
// many were suppressed. Not thread-safe: one per thread (or per object that
// lives on one loop).

#include <cstdint>

#include "absl/time/time.h"

namespace nodedns {

class LogLimiter {
 public:
  LogLimiter(absl::Duration interval = absl::Seconds(10), int burst = 3) : interval_(interval), burst_(burst) {}

  // True if a line may be logged at `now`. When it returns true,
  // *suppressed is the number of lines refused since the last one allowed.
  bool Allow(absl::Time now, uint64_t* suppressed) {
    if (now >= window_start_ + interval_) {
      window_start_ = now;
      used_ = 0;
    }
    if (used_ >= burst_) {
      ++suppressed_;
      return false;
    }
    ++used_;
    *suppressed = suppressed_;
    suppressed_ = 0;
    return true;
  }

 private:
  const absl::Duration interval_;
  const int burst_;
  absl::Time window_start_ = absl::InfinitePast();
  int used_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace nodedns

#endif  // NODEDNS_LIB_COMMON_LOG_LIMITER_H_
