#include "lib/common/periodic_timer.h"

#include <algorithm>

#include "lib/common/guarded.h"
#include "lib/common/uv_status.h"

namespace nodedns {

absl::Status PeriodicTimer::Init(uv_loop_t* loop) {
  if (int rc = uv_timer_init(loop, &timer_); rc != 0) return UvStatus(rc, "uv_timer_init (" + name_ + ")");
  timer_.data = this;
  initialized_ = true;
  return absl::OkStatus();
}

void PeriodicTimer::SetPeriod(absl::Duration period) {
  if (!initialized_ || closed_) return;
  uint64_t ms = period > absl::ZeroDuration() ? static_cast<uint64_t>(std::max<int64_t>(1, absl::ToInt64Milliseconds(period))) : 0;
  if (ms == period_ms_) return;
  uint64_t first = ms;
  if (period_ms_ != 0 && uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_))) {
    uint64_t since_last = period_ms_ - std::min(uv_timer_get_due_in(&timer_), period_ms_);
    first = ms > since_last ? ms - since_last : 0;
  }
  uv_timer_stop(&timer_);
  period_ms_ = ms;
  if (ms != 0) uv_timer_start(&timer_, &PeriodicTimer::OnTimer, first, ms);
}

void PeriodicTimer::Close() {
  if (!initialized_ || closed_) return;
  closed_ = true;
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

void PeriodicTimer::OnTimer(uv_timer_t* t) {
  auto* self = static_cast<PeriodicTimer*>(t->data);
  Guarded(self->name_.c_str(), [self] { self->run_(); });
}

}  // namespace nodedns
