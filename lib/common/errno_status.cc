#include "lib/common/errno_status.h"

#include <cerrno>
#include <cstring>

namespace nodedns {

absl::Status ErrnoStatus(int err, const std::string& what) {
  std::string msg = what + ": " + std::strerror(err);
  switch (err) {
    case ENOENT:
    case ENODEV: return absl::NotFoundError(msg);
    case EOPNOTSUPP: return absl::UnimplementedError(msg);
    case EADDRINUSE:
    case EEXIST: return absl::AlreadyExistsError(msg);
    case EACCES:
    case EPERM: return absl::PermissionDeniedError(msg);
    case EADDRNOTAVAIL:
    case EAFNOSUPPORT: return absl::FailedPreconditionError(msg);
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case ENOBUFS:
    case ENOSPC:
    case EDQUOT:
    case EFBIG: return absl::ResourceExhaustedError(msg);
    case EAGAIN:
    case ECONNREFUSED: return absl::UnavailableError(msg);
    default: return absl::UnknownError(msg);
  }
}

}  // namespace nodedns
