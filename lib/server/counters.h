#ifndef NODEDNS_LIB_SERVER_COUNTERS_H_
#define NODEDNS_LIB_SERVER_COUNTERS_H_

// What the listeners count: packets dropped before the resolver, UDP send
// errors, TCP connection outcomes, and the time from receiving a query to
// sending its answer. Exported under these names (`dnsctl stats` counters,
// nodedns_<name>_total).
//
// Threading: one per worker, written by that worker's thread only.

#include <atomic>
#include <cstdint>

#include "lib/common/counters.h"

#define NODEDNS_SERVER_COUNTERS(X)                                                                \
  X(dropped_oversize, "UDP queries larger than the receive buffer, dropped")                      \
  X(udp_send_errors, "UDP answers the kernel refused to send")                                    \
  X(tcp_accepted, "TCP connections accepted")                                                     \
  X(tcp_rejected, "TCP connections closed at once because max_tcp_connections were open")         \
  X(tcp_idle_closed, "TCP connections closed after the idle timeout")                             \
  X(tcp_bad_frames, "TCP connections closed for a frame shorter than a DNS header")               \
  X(tcp_replies_dropped, "Answers for TCP connections that had closed meanwhile")                 \
  X(tcp_slow_reader_closed, "TCP connections closed because the client did not read its answers") \
  X(tcp_reads_paused, "TCP connections whose reading paused because max_tcp_write_queue bytes of answers were unread") \
  X(tcp_frame_deadline_closed, "TCP connections closed because a frame did not arrive whole within tcp_frame_timeout_ms") \
  X(tcp_idle_cut, "TCP connections cut (the longest idle) to make room for a new one at max_tcp_connections") \
  X(tcp_budget_cut, "TCP connections with unread answers cut because the TCP memory budget was spent") \
  X(tcp_budget_closed, "TCP connections closed because they grew past the spent TCP memory budget") \
  X(tcp_budget_charged_bytes, "Bytes charged to the TCP memory budget (minus released: what TCP holds now)") \
  X(tcp_budget_released_bytes, "Bytes released from the TCP memory budget") \
  X(tcp_memory_trims, "Times freed TCP memory was handed back to the kernel (malloc_trim)")

namespace nodedns::server {

struct Counters {
  NODEDNS_COUNTER_MEMBERS(NODEDNS_SERVER_COUNTERS)
  LatencyHistogram latency;  // receive to send, per answer
};

}  // namespace nodedns::server

#endif  // NODEDNS_LIB_SERVER_COUNTERS_H_
