#ifndef NODEDNS_LIB_SERVER_QUERY_LOG_H_
#define NODEDNS_LIB_SERVER_QUERY_LOG_H_

// The optional sampled query log: one answered query in `sample` is logged
// (client, transport, name, type, rcode, answer size, latency), so an
// operator can see what a node asks without a line per query. Off (0) by
// default; the cost when off is one branch per answer.
//
// Threading: one per worker, used only on its thread.

#include <cstdint>

#include "absl/types/span.h"
#include "lib/common/socket_address.h"

namespace nodedns::server {

class QueryLog {
 public:
  void set_sample(int sample) { sample_ = sample; }
  bool enabled() const { return sample_ > 0; }
  // Called for every answer sent: true for the one in `sample` to log.
  bool Sample() { return sample_ > 0 && ++seen_ % static_cast<uint64_t>(sample_) == 0; }
  void Log(const SocketAddress& client, bool tcp, absl::Span<const uint8_t> answer, int64_t latency_ns);

 private:
  int sample_ = 0;
  uint64_t seen_ = 0;
};

}  // namespace nodedns::server

#endif  // NODEDNS_LIB_SERVER_QUERY_LOG_H_
