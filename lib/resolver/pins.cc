#include "lib/resolver/pins.h"

#include <algorithm>

#include "lib/dns/constants.h"
#include "lib/dns/name.h"
#include "lib/dns/query_view.h"
#include "lib/resolver/resolver.h"

namespace nodedns::resolver {

absl::StatusOr<std::vector<PinnedKey>> PinKeys(const std::vector<std::string>& names, bool without_aaaa) {
  std::vector<PinnedKey> out;
  for (const std::string& name : names) {
    auto wire = dns::NameFromText(name);
    if (!wire.ok()) return wire.status();
    std::string lower = dns::Lowercase(*wire);
    for (uint16_t type : {dns::kTypeA, dns::kTypeAAAA}) {
      if (type == dns::kTypeAAAA && without_aaaa) continue;
      dns::CacheKey key;
      dns::MakeCacheKey(reinterpret_cast<const uint8_t*>(lower.data()), lower.size(), type, dns::kClassIN,
                        /*dnssec_ok=*/false, /*checking_disabled=*/false, &key);
      out.push_back({std::string(key.view()), dns::NameToText(lower), type});
    }
  }
  return out;
}

PinRefresher::PinRefresher(std::vector<PinnedKey> pins, Resolver* resolver, cache::Cache* cache,
                           const SteadyClock* clock, TimerQueue* timers, absl::Duration min_interval, uint64_t seed)
    : resolver_(resolver),
      cache_(cache),
      clock_(clock),
      timers_(timers),
      min_interval_(min_interval),
      rng_(seed) {
  std::uniform_real_distribution<double> fraction(0.75, 0.90);
  for (PinnedKey& k : pins) pins_.push_back(Pin{std::move(k), fraction(rng_)});
}

PinRefresher::~PinRefresher() {
  if (timer_) timers_->Cancel(timer_);
}

void PinRefresher::Start() {
  if (pins_.empty()) return;
  timer_ = timers_->Add(clock_->Now(), [this] { Check(); });
}

void PinRefresher::Check() {
  absl::Time now = clock_->Now();
  // After an attempt (answered or not) a pin waits: an answer moves its
  // deadline on; a failure is not retried before min(min_interval, 10 s).
  std::uniform_real_distribution<double> spread(0.8, 1.2);
  absl::Duration retry = std::min(min_interval_, absl::Seconds(10));
  for (Pin& p : pins_) {
    if (now < p.next_attempt) continue;
    absl::Time inserted, expires, stale_until;
    bool cached = cache_->Peek(p.key.key, &inserted, &expires, &stale_until);
    if (cached && now < inserted + std::max((expires - inserted) * p.fraction, min_interval_)) continue;
    resolver_->RefreshPinned(p.key.key);
    p.next_attempt = now + retry * spread(rng_);
  }
  timer_ = timers_->Add(now + kCheckEvery, [this] { Check(); });
}

}  // namespace nodedns::resolver
