// TcpListener's limits: the memory budget, the order of activity (for cuts),
// and the sweep that enforces the frame deadline and the idle timeout.

#include <algorithm>
#include <utility>
#include <vector>
#ifdef __GLIBC__  // defined by the headers above
#include <malloc.h>
#endif

#include "lib/server/tcp_connection.h"
#include "lib/server/tcp_listener.h"

namespace nodedns::server {

using namespace tcp_internal;  // NOLINT: this file's own constants

TcpListener::Connection* TcpListener::Cuttable(absl::Time now) const {
  // The oldest activity first. A connection waiting for upstream answers is
  // working for its client; one whose frame has been arriving for a while is
  // not (slowloris), nor is one whose answers sit unread.
  for (Connection* c = oldest_; c != nullptr; c = c->newer) {
    if (c->inflight > 0) continue;
    if (c->frame_started != absl::InfiniteFuture() && now - c->frame_started < kCutGrace) continue;
    return c;
  }
  return nullptr;
}

bool TcpListener::Recharge(Connection* c) {
  int64_t held = kConnectionCost + static_cast<int64_t>(c->in.capacity() + c->out.capacity() + c->writing.capacity());
  int64_t delta = held - c->charged;
  if (delta == 0) return true;
  c->charged = held;
  held_ += delta;
  budget_->Add(delta);
  if (delta < 0) {
    AddTo(counters_->tcp_budget_released_bytes, -delta);
    released_since_trim_ -= delta;
    return true;
  }
  AddTo(counters_->tcp_budget_charged_bytes, delta);
  if (!budget_->over()) return true;
  // Over the budget: first the connections whose clients left their answers
  // unread, the longest idle first; then the one that grew.
  absl::Time now = clock_->Now();
  for (Connection* d = oldest_; d != nullptr && budget_->over();) {
    Connection* next = d->newer;
    if (d != c && Queued(d) > 0 && now - d->last_active >= kCutGrace) Close(d, Why::kBudgetCut);
    d = next;
  }
  if (!budget_->over()) return true;
  Close(c, Why::kBudget);
  return false;
}

void TcpListener::Touch(Connection* c) {
  Unlink(c);
  c->older = newest_;
  if (newest_ != nullptr) newest_->newer = c;
  newest_ = c;
  if (oldest_ == nullptr) oldest_ = c;
}

void TcpListener::Unlink(Connection* c) {
  if (c->older != nullptr) {
    c->older->newer = c->newer;
  } else if (oldest_ == c) {
    oldest_ = c->newer;
  }
  if (c->newer != nullptr) {
    c->newer->older = c->older;
  } else if (newest_ == c) {
    newest_ = c->older;
  }
  c->older = c->newer = nullptr;
}

void TcpListener::ArmSweep() {
  if (sweep_ != 0 || closed_all_ || conns_.empty()) return;
  absl::Duration every = std::clamp(std::min(options_.idle_timeout, options_.frame_timeout) / 4,
                                    absl::Milliseconds(10), absl::Milliseconds(250));
  sweep_ = timers_->Add(clock_->Now() + every, [this] {
    sweep_ = 0;
    Sweep(clock_->Now());
    ArmSweep();
  });
}

void TcpListener::Sweep(absl::Time now) {
  std::vector<std::pair<Connection*, Why>> due;
  for (auto& [id, c] : conns_) {
    if (c->frame_started != absl::InfiniteFuture() && now - c->frame_started >= options_.frame_timeout) {
      due.emplace_back(c, Why::kFrameDeadline);
    } else if (c->inflight == 0 && now - c->last_active >= options_.idle_timeout) {
      due.emplace_back(c, Queued(c) > 0 ? Why::kSlowReader : Why::kIdle);
    }
  }
  for (auto& [c, why] : due) Close(c, why);
  MaybeTrim();
}

void TcpListener::MaybeTrim() {
  if (released_since_trim_ < kTrimAfter) return;
  released_since_trim_ = 0;
#ifdef __GLIBC__
  malloc_trim(0);
  Bump(counters_->tcp_memory_trims);
#endif
}

}  // namespace nodedns::server
