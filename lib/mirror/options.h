#ifndef NODEDNS_LIB_MIRROR_OPTIONS_H_
#define NODEDNS_LIB_MIRROR_OPTIONS_H_

// The zone mirror's options ([mirror]; which zones: [[zone]] mirror).

#include <cstddef>

#include "absl/time/time.h"

namespace nodedns::mirror {

struct TransferLimits {
  size_t max_records = 200'000;
  size_t max_bytes = 32u << 20;                // of DNS messages received
  absl::Duration timeout = absl::Seconds(30);  // the whole transfer

  bool operator==(const TransferLimits&) const = default;
};

struct MirrorOptions {
  absl::Duration check_interval = absl::Seconds(60);  // SOA serial checks, jittered ±25 %
  absl::Duration min_transfer_interval = absl::Seconds(300);
  absl::Duration query_timeout = absl::Seconds(2);  // of an SOA query
  TransferLimits limits;

  bool operator==(const MirrorOptions&) const = default;
};

}  // namespace nodedns::mirror

#endif  // NODEDNS_LIB_MIRROR_OPTIONS_H_
