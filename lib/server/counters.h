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
  X(tcp_slow_reader_closed, "TCP connections closed because the client did not read its answers")

namespace nodedns::server {

struct Counters {
  NODEDNS_COUNTER_MEMBERS(NODEDNS_SERVER_COUNTERS)
  LatencyHistogram latency;  // receive to send, per answer
};

}  // namespace nodedns::server

#endif  // NODEDNS_LIB_SERVER_COUNTERS_H_
