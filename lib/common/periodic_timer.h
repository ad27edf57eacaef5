#ifndef NODEDNS_LIB_COMMON_PERIODIC_TIMER_H_
#define NODEDNS_LIB_COMMON_PERIODIC_TIMER_H_

// A libuv timer that runs a callback every `period`, whose period can change
// without losing its phase: after SetPeriod the next run comes one new period
// after the last run, not one period after now. So a reload, however often,
// never postpones a periodic snapshot or summary. Exceptions from the
// callback are logged (Guarded), never unwound through libuv.
//
// Threading: the loop's thread only. Lifetime: Close(), then let the loop run
// the close callback before destroying (or destroy after uv_run returns).

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace nodedns {

class PeriodicTimer {
 public:
  PeriodicTimer(std::string name, std::function<void()> run) : name_(std::move(name)), run_(std::move(run)) {}
  PeriodicTimer(const PeriodicTimer&) = delete;
  PeriodicTimer& operator=(const PeriodicTimer&) = delete;

  absl::Status Init(uv_loop_t* loop);
  // Zero or negative stops it. Unchanged: the schedule stays as it is.
  void SetPeriod(absl::Duration period);
  void Close();
  absl::Duration period() const { return absl::Milliseconds(period_ms_); }

 private:
  static void OnTimer(uv_timer_t* t);

  std::string name_;
  std::function<void()> run_;
  uv_timer_t timer_;
  bool initialized_ = false;
  bool closed_ = false;
  uint64_t period_ms_ = 0;
};

}  // namespace nodedns

#endif  // NODEDNS_LIB_COMMON_PERIODIC_TIMER_H_
