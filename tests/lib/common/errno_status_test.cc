#include "lib/common/errno_status.h"

#include <cerrno>
#include <cstring>
#include <string>

#include "gtest/gtest.h"

namespace nodedns {
namespace {

TEST(ErrnoStatusTest, CodesCallersBranchOn) {
  struct Case {
    int err;
    absl::StatusCode code;
  };
  const Case cases[] = {
      {ENOENT, absl::StatusCode::kNotFound},
      {ENODEV, absl::StatusCode::kNotFound},
      {EOPNOTSUPP, absl::StatusCode::kUnimplemented},
      {EADDRINUSE, absl::StatusCode::kAlreadyExists},
      {EEXIST, absl::StatusCode::kAlreadyExists},
      {EACCES, absl::StatusCode::kPermissionDenied},
      {EPERM, absl::StatusCode::kPermissionDenied},
      {EADDRNOTAVAIL, absl::StatusCode::kFailedPrecondition},
      {EAFNOSUPPORT, absl::StatusCode::kFailedPrecondition},
      {EMFILE, absl::StatusCode::kResourceExhausted},
      {ENFILE, absl::StatusCode::kResourceExhausted},
      {ENOMEM, absl::StatusCode::kResourceExhausted},
      {ENOBUFS, absl::StatusCode::kResourceExhausted},
      {ENOSPC, absl::StatusCode::kResourceExhausted},
      {EDQUOT, absl::StatusCode::kResourceExhausted},
      {EFBIG, absl::StatusCode::kResourceExhausted},
      {EAGAIN, absl::StatusCode::kUnavailable},
      {ECONNREFUSED, absl::StatusCode::kUnavailable},
      {EINVAL, absl::StatusCode::kUnknown},
      {EIO, absl::StatusCode::kUnknown},
  };
  for (const Case& c : cases) {
    absl::Status s = ErrnoStatus(c.err, "op");
    EXPECT_EQ(s.code(), c.code) << std::strerror(c.err);
  }
}

TEST(ErrnoStatusTest, MessageNamesWhatAndWhy) {
  absl::Status s = ErrnoStatus(ENOENT, "open /etc/nodedns.toml");
  EXPECT_EQ(s.message(), std::string("open /etc/nodedns.toml: ") + std::strerror(ENOENT));
}

TEST(ErrnoStatusTest, ZeroIsStillAnError) {
  // Callers pass errno after a failure; a zero there must not read as OK.
  EXPECT_FALSE(ErrnoStatus(0, "op").ok());
}

}  // namespace
}  // namespace nodedns
