#ifndef NODEDNS_LIB_UPSTREAM_UPSTREAM_H_
#define NODEDNS_LIB_UPSTREAM_UPSTREAM_H_

// Two interfaces:
//  - Transport: send one query to one server (ServerChannel: our own UDP,
//    c-ares for TCP), get one callback. Tests script their own.
//  - Upstream: what the resolver sees of a zone's servers (UpstreamPool):
//    sending with a priority under caps and circuit breakers, the zone's
//    health, and the client response timeout to use before serving stale.

#include <cstdint>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace nodedns::upstream {

// Called exactly once per Send, on the owning loop's thread, never from
// inside Send(): with the raw answer (OK), or with an error status
// (DeadlineExceeded for a timeout, Unavailable, DataLoss). Two codes are of
// nodedns's own making and say nothing about the upstream, so they are never
// cached as a failure: ResourceExhausted (a local limit: the query waited
// too long for room under the concurrency limit, or no memory) and Cancelled
// (shutdown, a reload). The span is valid only during the call.
using Callback = absl::AnyInvocable<void(const absl::Status&, absl::Span<const uint8_t>)>;

// ResourceExhausted or Cancelled: a failure of nodedns's own making.
inline bool IsLocalFailure(const absl::Status& s) { return absl::IsResourceExhausted(s) || absl::IsCancelled(s); }

// What a transport knows of the answer it delivers; InfinitePast where it
// does not know.
struct AnswerTiming {
  // When the attempt this answer answers was sent (steady clock). Every
  // attempt carries an ID of its own, so a retry's answer is told from a late
  // answer to the first attempt: round trips measured from it are not
  // ambiguous (Karn's algorithm), and a loss is seen even when the retry
  // saves the query.
  absl::Time sent = absl::InfinitePast();
  // When the answer arrived: the kernel's receive time, on the steady clock.
  // Round trips measured with it leave out our own event loop's delays, which
  // are not the upstream's latency.
  absl::Time received = absl::InfinitePast();
  // Attempts sent before the answered one and unanswered when it came: lost
  // (a server that drops under load), unless their answers are still on the
  // way.
  int earlier_attempts = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Sends a complete DNS query; the ID may be replaced.
  virtual void Send(absl::Span<const uint8_t> query, Callback done) = 0;
  // Only during a Send callback: the timing of the answer being delivered.
  virtual AnswerTiming last_answer() const { return {}; }
};

// RFC 8767 as nodedns applies it: healthy -> refresh and wait up to the client
// timeout before serving stale; degraded (recent failures or missed client
// timeouts) -> serve stale at once, refresh in the background; down (every
// server's breaker open) -> serve stale at once, send nothing but probes.
enum class Health : uint8_t { kHealthy, kDegraded, kDown };
// Client misses go before background refreshes when the limits bind.
enum class Priority : uint8_t { kClient, kRefresh };
enum class SendResult : uint8_t { kSent, kOverCap, kUnavailable };
// Whose query it is, for the fair share of the queue: a client (its source
// address, or IPv6 prefix; see resolver/client_share.h), or kNoFlow for the
// cache's own work (refreshes, prefetches). Only compared, never interpreted.
using FlowId = uint64_t;
inline constexpr FlowId kNoFlow = 0;

class Upstream {
 public:
  virtual ~Upstream() = default;
  // kSent: `done` will be called once (the query may first wait in a queue).
  // Otherwise nothing was sent and `done` is dropped uncalled. `flow` says
  // whose query it is: client misses that must wait are served round robin
  // between flows.
  virtual SendResult Send(absl::Span<const uint8_t> query, Priority priority, FlowId flow, Callback done) = 0;
  virtual Health health() const = 0;
  // How long a client waits for a refresh before it is answered stale.
  virtual absl::Duration client_timeout() const = 0;
  // A refresh missed the client timeout: the zone counts as degraded.
  virtual void ReportClientTimeout() = 0;
  // When a usable answer (NOERROR or NXDOMAIN, probes included) last came
  // from a server of the zone (InfinitePast if never). Newer evidence wins:
  // a name whose refresh failed before it need not wait out the whole
  // failure-recheck time.
  virtual absl::Time last_good_answer() const = 0;
  // The send time of the newest query (or probe) the zone answered promptly.
  // A query sent well before it and still unanswered is presumed lost.
  virtual absl::Time newest_prompt_send() const = 0;
  // Unhealthy now, or a failure or slow answer within the degraded hold, even
  // if a good answer has since ended the degraded state. "Last known good"
  // uses it: the answers that end an outage are the ones it must distrust.
  virtual bool recently_unhealthy() const = 0;
};

}  // namespace nodedns::upstream

#endif  // NODEDNS_LIB_UPSTREAM_UPSTREAM_H_
