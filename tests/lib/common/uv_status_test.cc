#include "lib/common/uv_status.h"

#include <uv.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "gtest/gtest.h"

namespace nodedns {
namespace {

TEST(UvStatusTest, ErrnoCodesBecomeErrnoStatus) {
  EXPECT_TRUE(UvStatus(0, "x").ok());
  absl::Status in_use = UvStatus(UV_EADDRINUSE, "uv_listen");
  EXPECT_TRUE(absl::IsAlreadyExists(in_use)) << in_use;
  EXPECT_EQ(in_use.message(), std::string("uv_listen: ") + std::strerror(EADDRINUSE));
  EXPECT_TRUE(absl::IsNotFound(UvStatus(UV_ENOENT, "x")));
  EXPECT_TRUE(absl::IsResourceExhausted(UvStatus(UV_EMFILE, "x")));
  EXPECT_TRUE(absl::IsUnavailable(UvStatus(UV_EAGAIN, "x")));
}

// libuv's own codes (end of file, getaddrinfo errors, ...) are not errno
// values: they keep libuv's words, not "Unknown error 4095".
TEST(UvStatusTest, LibuvsOwnCodesKeepLibuvsWords) {
  for (int rc : {UV_EOF, UV_EAI_NONAME, UV_EAI_AGAIN, UV_ECHARSET}) {
    absl::Status s = UvStatus(rc, "op");
    EXPECT_EQ(s.code(), absl::StatusCode::kUnknown) << uv_err_name(rc);
    EXPECT_EQ(s.message(), std::string("op: ") + uv_strerror(rc)) << uv_err_name(rc);
  }
}

}  // namespace
}  // namespace nodedns
