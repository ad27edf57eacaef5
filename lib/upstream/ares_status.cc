#include "lib/upstream/ares_status.h"

#include <ares.h>

#include <string>

namespace nodedns::upstream {

absl::Status AresStatusToStatus(int s) {
  std::string msg = std::string("c-ares: ") + ares_strerror(s);
  switch (s) {
    case ARES_SUCCESS: return absl::OkStatus();
    case ARES_ETIMEOUT: return absl::DeadlineExceededError(msg);
    case ARES_ECONNREFUSED:
    case ARES_ESERVFAIL:
    case ARES_EREFUSED:
    case ARES_ENOTIMP:
      return absl::UnavailableError(msg);
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION:
      return absl::CancelledError(msg);
    case ARES_ENOMEM: return absl::ResourceExhaustedError(msg);
    case ARES_EBADRESP:
    case ARES_EFORMERR:
      return absl::DataLossError(msg);
    case ARES_EBADQUERY: return absl::InvalidArgumentError(msg);
    default: return absl::InternalError(msg);
  }
}

}  // namespace nodedns::upstream
