#include "lib/common/uv_status.h"

#include <uv.h>

#include "lib/common/errno_status.h"

namespace nodedns {

absl::Status UvStatus(int rc, const std::string& what) {
  if (rc == 0) return absl::OkStatus();
  // On Unix libuv's codes are -errno, except its own (UV_EOF, UV_EAI_*,
  // UV_ECHARSET, ...), which lie from -3000 down to -4095.
  if (rc < 0 && rc > -3000) return ErrnoStatus(-rc, what);
  return absl::UnknownError(what + ": " + uv_strerror(rc));
}

}  // namespace nodedns
