#ifndef NODEDNS_LIB_MIRROR_STATUS_H_
#define NODEDNS_LIB_MIRROR_STATUS_H_

// What the mirror reports per zone (dnsctl stats, /metrics): a plain value,
// so that the control room shows it without linking the mirror.

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace nodedns::mirror {

struct MirrorStatus {
  std::string zone;
  bool have_serial = false;
  uint32_t serial = 0;
  size_t records = 0;  // in the last transfer
  size_t entries = 0;  // cache entries it made
  absl::Time last_transfer = absl::InfinitePast();  // steady clock
  absl::Time last_check = absl::InfinitePast();
  absl::Time last_attempt = absl::InfinitePast();  // of a transfer, good or not
  std::string last_error;  // of the last check or transfer; "" after a good one
  uint64_t checks = 0, transfers = 0, failures = 0;
  uint64_t deferred = 0;  // transfers put off: the zone was not healthy
};

}  // namespace nodedns::mirror

#endif  // NODEDNS_LIB_MIRROR_STATUS_H_
