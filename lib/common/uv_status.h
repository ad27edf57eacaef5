#ifndef NODEDNS_LIB_COMMON_UV_STATUS_H_
#define NODEDNS_LIB_COMMON_UV_STATUS_H_

// The one place libuv error codes become absl::Status. In its own library
// (nodedns_common_uv), so that what links common alone (dnsctl) does not
// link libuv.

#include <string>

#include "absl/status/status.h"

namespace nodedns {

// OK for 0; a libuv code (-errno on Unix) becomes ErrnoStatus's code and text.
absl::Status UvStatus(int rc, const std::string& what);

}  // namespace nodedns

#endif  // NODEDNS_LIB_COMMON_UV_STATUS_H_
