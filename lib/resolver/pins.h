#ifndef NODEDNS_LIB_RESOLVER_PINS_H_
#define NODEDNS_LIB_RESOLVER_PINS_H_

// Pinned names ([[zone]] pin = [...], README "Pinned names"): names whose
// answers this node keeps whatever their popularity. Their A and AAAA
// entries (no DO, no CD: what stub resolvers ask) are
//  - never evicted (the cache's pinned tier, Cache::SetPinned);
//  - resolved at start-up, then refreshed before they expire, at a point
//    drawn per name between 75 % and 90 % of the TTL (so that the nodes of a
//    fleet, and the names of one node, spread out), but never more often
//    than `min_interval` (a name with a 5 s TTL is refreshed every
//    min_interval and served stale by the usual rules in between);
//  - refreshed as background queries (Priority::kRefresh, under the zone's
//    limit), not while the zone is down (its probes find the recovery);
//  - kept in the snapshot like every entry.
// PinRefresher runs on one worker (the first): one refresher per node.
//
// Threading: a PinRefresher belongs to its worker's loop thread, like the
// Resolver it uses. PinKeys is a plain function.

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lib/cache/cache.h"
#include "lib/common/clock.h"
#include "lib/common/timer_queue.h"

namespace nodedns::resolver {

class Resolver;

struct PinnedKey {
  std::string key;   // the cache key
  std::string name;  // presentation form, for messages
  uint16_t qtype;
};

// The cache keys of `names` (presentation form): A, and AAAA unless
// `without_aaaa` (a zone that answers AAAA itself, filter_aaaa).
absl::StatusOr<std::vector<PinnedKey>> PinKeys(const std::vector<std::string>& names, bool without_aaaa);

class PinRefresher {
 public:
  // How often every pin is looked at (a hash lookup each).
  static constexpr absl::Duration kCheckEvery = absl::Seconds(1);

  PinRefresher(std::vector<PinnedKey> pins, Resolver* resolver, cache::Cache* cache, const SteadyClock* clock,
               TimerQueue* timers, absl::Duration min_interval, uint64_t seed);
  ~PinRefresher();
  PinRefresher(const PinRefresher&) = delete;
  PinRefresher& operator=(const PinRefresher&) = delete;

  // The first check at once: pins not cached (or due) are asked now.
  void Start();
  // One pass over the pins (the timer's work; tests call it directly).
  void Check();

 private:
  struct Pin {
    PinnedKey key;
    double fraction;                                // of the TTL at which it is refreshed
    absl::Time next_attempt = absl::InfinitePast();  // after an attempt: not before then
  };
  std::vector<Pin> pins_;
  Resolver* const resolver_;
  cache::Cache* const cache_;
  const SteadyClock* const clock_;
  TimerQueue* const timers_;
  const absl::Duration min_interval_;
  std::mt19937_64 rng_;
  TimerQueue::Id timer_ = 0;
};

}  // namespace nodedns::resolver

#endif  // NODEDNS_LIB_RESOLVER_PINS_H_
