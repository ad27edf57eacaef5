#ifndef NODEDNS_LIB_UPSTREAM_ARES_STATUS_H_
#define NODEDNS_LIB_UPSTREAM_ARES_STATUS_H_

#include "absl/status/status.h"

namespace nodedns::upstream {

// The one place c-ares status codes become absl::Status:
//   ARES_SUCCESS -> Ok; ARES_ETIMEOUT -> DeadlineExceeded;
//   ARES_ECONNREFUSED, ARES_ESERVFAIL, ... -> Unavailable;
//   ARES_ECANCELLED, ARES_EDESTRUCTION -> Cancelled; ARES_ENOMEM -> ResourceExhausted;
//   ARES_EBADRESP, ARES_EFORMERR -> DataLoss; everything else -> Internal.
absl::Status AresStatusToStatus(int ares_status);

}  // namespace nodedns::upstream

#endif  // NODEDNS_LIB_UPSTREAM_ARES_STATUS_H_
