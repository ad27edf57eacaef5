#include "lib/upstream/ares_status.h"

#include <ares.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/upstream/upstream.h"

namespace nodedns::upstream {
namespace {

TEST(AresStatusTest, EveryCodeHasItsStatus) {
  struct Case {
    int ares;
    absl::StatusCode code;
  };
  const Case cases[] = {
      {ARES_SUCCESS, absl::StatusCode::kOk},
      {ARES_ETIMEOUT, absl::StatusCode::kDeadlineExceeded},
      {ARES_ECONNREFUSED, absl::StatusCode::kUnavailable},
      {ARES_ESERVFAIL, absl::StatusCode::kUnavailable},
      {ARES_EREFUSED, absl::StatusCode::kUnavailable},
      {ARES_ENOTIMP, absl::StatusCode::kUnavailable},
      {ARES_ECANCELLED, absl::StatusCode::kCancelled},
      {ARES_EDESTRUCTION, absl::StatusCode::kCancelled},
      {ARES_ENOMEM, absl::StatusCode::kResourceExhausted},
      {ARES_EBADRESP, absl::StatusCode::kDataLoss},
      {ARES_EFORMERR, absl::StatusCode::kDataLoss},
      {ARES_EBADQUERY, absl::StatusCode::kInvalidArgument},
      {ARES_ENOTFOUND, absl::StatusCode::kInternal},
      {ARES_ENODATA, absl::StatusCode::kInternal},
      {12345, absl::StatusCode::kInternal},
  };
  for (const Case& c : cases) {
    absl::Status s = AresStatusToStatus(c.ares);
    EXPECT_EQ(s.code(), c.code) << c.ares << " " << ares_strerror(c.ares);
    if (!s.ok()) {
      EXPECT_EQ(s.message(), std::string("c-ares: ") + ares_strerror(c.ares));
    }
  }
}

// The resolver never caches a failure of nodedns's own making: cancellation
// (shutdown, reload) and memory exhaustion must read as local, upstream
// failures must not.
TEST(AresStatusTest, LocalFailuresAreTheOnesOfOurOwnMaking) {
  EXPECT_TRUE(IsLocalFailure(AresStatusToStatus(ARES_ECANCELLED)));
  EXPECT_TRUE(IsLocalFailure(AresStatusToStatus(ARES_EDESTRUCTION)));
  EXPECT_TRUE(IsLocalFailure(AresStatusToStatus(ARES_ENOMEM)));
  EXPECT_FALSE(IsLocalFailure(AresStatusToStatus(ARES_ETIMEOUT)));
  EXPECT_FALSE(IsLocalFailure(AresStatusToStatus(ARES_ECONNREFUSED)));
  EXPECT_FALSE(IsLocalFailure(AresStatusToStatus(ARES_EBADRESP)));
}

}  // namespace
}  // namespace nodedns::upstream
