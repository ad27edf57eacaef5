#ifndef NODEDNS_TESTS_SUPPORT_DAEMON_FIXTURE_H_
#define NODEDNS_TESTS_SUPPORT_DAEMON_FIXTURE_H_

// A test with a fake upstream and one nodedns forwarding to it, stopped (and
// required to exit 0, which under ASan is also a leak check) at the end.

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/daemon_process.h"
#include "tests/support/fake_upstream.h"

namespace nodedns::testing {

class DaemonFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    upstream_ = FakeUpstream::Start();
    ASSERT_NE(upstream_, nullptr);
  }
  void TearDown() override {
    if (daemon_) {
      EXPECT_EQ(daemon_->Stop(), 0) << daemon_->log();
    }
  }
  // nodedns --upstream <the fake> --log-level info, then `extra`.
  void StartDaemon(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--upstream", upstream_->address(), "--log-level", "info"};
    args.insert(args.end(), extra.begin(), extra.end());
    daemon_ = DaemonProcess::Start(args);
    ASSERT_NE(daemon_->port(), 0) << daemon_->log();
  }

  std::unique_ptr<FakeUpstream> upstream_;
  std::unique_ptr<DaemonProcess> daemon_;
};

}  // namespace nodedns::testing

#endif  // NODEDNS_TESTS_SUPPORT_DAEMON_FIXTURE_H_
