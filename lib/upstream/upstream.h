#ifndef NODEDNS_LIB_UPSTREAM_UPSTREAM_H_
#define NODEDNS_LIB_UPSTREAM_UPSTREAM_H_

// What the resolver needs from an upstream: send a query, get one callback.
// UpstreamSet (c-ares) is the real implementation; tests script their own.

#include <cstdint>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/types/span.h"

namespace nodedns::upstream {

class Upstream {
 public:
  // Called exactly once per Send, on the owning loop's thread, never from
  // inside Send(): with the raw answer (OK), or with an error status
  // (DeadlineExceeded for a timeout, Unavailable, DataLoss, Cancelled on
  // shutdown). The span is valid only during the call.
  using Callback = absl::AnyInvocable<void(const absl::Status&, absl::Span<const uint8_t>)>;

  virtual ~Upstream() = default;
  // Sends a complete DNS query; the ID may be replaced.
  virtual void Send(absl::Span<const uint8_t> query, Callback done) = 0;
};

}  // namespace nodedns::upstream

#endif  // NODEDNS_LIB_UPSTREAM_UPSTREAM_H_
