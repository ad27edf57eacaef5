#include "lib/common/uv_status.h"

#include <uv.h>

#include "lib/common/errno_status.h"

namespace nodedns {

absl::Status UvStatus(int rc, const std::string& what) {
  if (rc == 0) return absl::OkStatus();
  if (rc < 0 && rc > -4096) return ErrnoStatus(-rc, what);  // libuv codes are -errno on Unix
  return absl::UnknownError(what + ": " + uv_strerror(rc));
}

}  // namespace nodedns
