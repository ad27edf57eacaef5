#ifndef NODEDNS_LIB_UPSTREAM_POOL_INTERNAL_H_
#define NODEDNS_LIB_UPSTREAM_POOL_INTERNAL_H_

// UpstreamPool's private parts, shared by pool.cc (sending, the limit and the
// queue) and pool_health.cc (breakers, probes, health, reloads). Not for
// other users.

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "lib/common/log_limiter.h"
#include "lib/dns/constants.h"
#include "lib/dns/name.h"
#include "lib/dns/query_view.h"
#include "lib/dns/writers.h"
#include "lib/upstream/pool.h"

namespace nodedns::upstream {

struct UpstreamPool::Server {
  Server(const ServerSpec& spec, const BreakerOptions& b, uint32_t seed)
      : name(spec.name), transport(spec.transport), breaker(b, seed) {}
  std::string name;
  absl::Time last_good_sent = absl::InfinitePast();
  Transport* transport;
  CircuitBreaker breaker;
  TimerQueue::Id probe_timer = 0;
  uint64_t probe_generation = 0;  // answers to abandoned probes are ignored
  bool probe_inflight = false;
  // For dnsctl/metrics: client queries and refreshes sent, their failures,
  // and a smoothed round-trip time of good answers (as Unbound's srtt).
  uint64_t queries = 0;
  uint64_t failures = 0;
  absl::Duration srtt = absl::ZeroDuration();
  // A flapping server logs at most 4 state changes a minute.
  LogLimiter log_limit{absl::Seconds(60), 4};
};

struct UpstreamPool::Request {
  std::vector<uint8_t> query;
  Callback done;
  Priority priority;
  FlowId flow = kNoFlow;
  absl::Duration client_timeout;  // at send time: a slower answer means degraded
  uint32_t tried = 0;             // bit per server
  absl::Time sent_at;
  absl::Time deadline;            // while queued
  int inflight_at_send = 0;       // for the limiter: was the limit in use?
  // Counted against the limit until answered, or presumed lost (Forget).
  bool counted = false;
  bool keyed = false;  // `in_flight` points into in_flight_
  std::multimap<absl::Time, Request*>::iterator in_flight;
};

namespace pool_internal {

// A usable answer: a response to our question with NOERROR or NXDOMAIN.
// Anything else (SERVFAIL, REFUSED, NOTIMP as RFC 8767 says, or garbage that
// happens to carry our ID) is a failure, and never evidence that the zone
// answers again.
inline bool IsGoodAnswer(absl::Span<const uint8_t> query, absl::Span<const uint8_t> answer) {
  if (!dns::IsAnswerTo(query, answer)) return false;
  uint16_t rcode = answer[3] & 0x0f;
  return rcode == dns::kNoError || rcode == dns::kNxDomain;
}

// No answer at all: the server (or the path to it) dropped the query.
inline bool IsDrop(const absl::Status& st) { return absl::IsDeadlineExceeded(st) || absl::IsUnavailable(st); }

inline std::vector<uint8_t> ProbeQuery(const std::string& zone) {
  auto wire = dns::NameFromText(zone);
  std::string name = wire.ok() ? *wire : std::string(1, '\0');
  std::vector<uint8_t> q(dns::kMaxQuerySize);
  q.resize(dns::WriteQuery(name, dns::kTypeSOA, dns::kClassIN, false, false, q.data()));
  return q;
}

}  // namespace pool_internal
}  // namespace nodedns::upstream

#endif  // NODEDNS_LIB_UPSTREAM_POOL_INTERNAL_H_
