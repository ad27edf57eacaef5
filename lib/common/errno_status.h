#ifndef NODEDNS_LIB_COMMON_ERRNO_STATUS_H_
#define NODEDNS_LIB_COMMON_ERRNO_STATUS_H_

#include <string>

#include "absl/status/status.h"

namespace nodedns {

// The one place errno becomes absl::Status: "what: strerror", with a code
// callers can branch on (NotFound, PermissionDenied, AlreadyExists for
// EADDRINUSE, Unavailable for ECONNREFUSED/EAGAIN, ResourceExhausted for a
// full disk or no memory).
absl::Status ErrnoStatus(int err, const std::string& what);

}  // namespace nodedns

#endif  // NODEDNS_LIB_COMMON_ERRNO_STATUS_H_
