#ifndef NODEDNS_LIB_SERVER_TCP_OPTIONS_H_
#define NODEDNS_LIB_SERVER_TCP_OPTIONS_H_

// The TCP listener's options, with their defaults (mirrored by
// lib/config/default.toml and README "Configuration"), and the memory budget
// that every TCP connection of the process draws from.

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/time/time.h"

namespace nodedns::server {

struct TcpOptions {
  // At the limit, a new connection cuts the connection idle the longest (see
  // TcpListener); it is refused only when none can be cut.
  int max_connections = 1024;
  // No complete query and no answer taken by the client for this long, with
  // nothing in flight: closed. Bytes of an unfinished frame do not count.
  absl::Duration idle_timeout = absl::Seconds(10);
  // Each frame (length and message) must arrive whole within this long of
  // its first byte, however the bytes trickle in (slowloris).
  absl::Duration frame_timeout = absl::Seconds(2);
  int max_pipeline = 64;
  // Answers queued for one connection beyond this many bytes pause its
  // reading until the client takes them.
  size_t max_write_queue = 16 << 10;
  // For all TCP connections of the process together (every worker): the
  // bytes they hold (buffers and a fixed cost per connection). The Server
  // makes the one TcpBudget from it.
  int64_t memory_budget = int64_t{32} << 20;

  bool operator==(const TcpOptions&) const = default;
};

// The bytes held by TCP connections across workers, against
// TcpOptions::memory_budget.
//
// Threading: thread-safe (relaxed atomics; a listener charges and releases
// only its own connections, so the sum is exact and the limit approximate by
// at most what the other workers charge at the same moment).
class TcpBudget {
 public:
  explicit TcpBudget(int64_t limit) : limit_(limit) {}
  TcpBudget(const TcpBudget&) = delete;
  TcpBudget& operator=(const TcpBudget&) = delete;

  void Add(int64_t delta) { used_.fetch_add(delta, std::memory_order_relaxed); }
  int64_t used() const { return used_.load(std::memory_order_relaxed); }
  int64_t limit() const { return limit_; }
  bool over() const { return used() > limit_; }

 private:
  const int64_t limit_;
  std::atomic<int64_t> used_{0};
};

}  // namespace nodedns::server

#endif  // NODEDNS_LIB_SERVER_TCP_OPTIONS_H_
