#include "lib/common/sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/daemon_process.h"

namespace nodedns {
namespace {

using ::testing::HasSubstr;

// Sets (or unsets) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// A datagram socket bound to `path` (a leading '@' is the abstract
// namespace), as systemd's notification socket.
class NotifyReceiver {
 public:
  explicit NotifyReceiver(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    if (path[0] == '@') addr.sun_path[0] = '\0';
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
    bound_ = bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) == 0;
  }
  ~NotifyReceiver() { close(fd_); }
  bool bound() const { return bound_; }
  // The next datagram, or nullopt if none is queued.
  std::optional<std::string> Receive() {
    char buf[4096];
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<size_t>(n));
  }

 private:
  int fd_ = -1;
  bool bound_ = false;
};

TEST(SdNotifyTest, WithoutNotifySocketNothingIsSent) {
  ScopedEnv unset("NOTIFY_SOCKET", std::nullopt);
  EXPECT_TRUE(SdNotify("READY=1").ok());
  ScopedEnv empty("NOTIFY_SOCKET", "");
  EXPECT_TRUE(SdNotify("READY=1").ok());
}

TEST(SdNotifyTest, SendsOneDatagramToAPathSocket) {
  testing::TempDir dir;
  std::string path = dir.path() + "/notify";
  NotifyReceiver receiver(path);
  ASSERT_TRUE(receiver.bound());
  ScopedEnv env("NOTIFY_SOCKET", path);
  ASSERT_TRUE(SdNotify("READY=1\nSTATUS=serving").ok());
  ASSERT_TRUE(SdNotify("WATCHDOG=1").ok());
  EXPECT_EQ(receiver.Receive(), "READY=1\nSTATUS=serving");
  EXPECT_EQ(receiver.Receive(), "WATCHDOG=1");
  EXPECT_EQ(receiver.Receive(), std::nullopt);
}

TEST(SdNotifyTest, SendsToAnAbstractSocket) {
  std::string name = "@nodedns-test-notify-" + std::to_string(getpid());
  NotifyReceiver receiver(name);
  if (!receiver.bound()) GTEST_SKIP() << "cannot bind an abstract socket here";
  ScopedEnv env("NOTIFY_SOCKET", name);
  ASSERT_TRUE(SdNotify("STOPPING=1").ok());
  EXPECT_EQ(receiver.Receive(), "STOPPING=1");
}

TEST(SdNotifyTest, UnusableSocketsAreErrors) {
  testing::TempDir dir;
  {
    ScopedEnv env("NOTIFY_SOCKET", "relative/path");
    auto st = SdNotify("READY=1");
    EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
    EXPECT_THAT(st.message(), HasSubstr("not a usable socket path"));
  }
  {
    ScopedEnv env("NOTIFY_SOCKET", "/" + std::string(200, 'x'));
    EXPECT_TRUE(absl::IsInvalidArgument(SdNotify("READY=1")));
  }
  {
    ScopedEnv env("NOTIFY_SOCKET", dir.path() + "/nobody");
    auto st = SdNotify("READY=1");
    EXPECT_TRUE(absl::IsNotFound(st)) << st;
    EXPECT_THAT(st.message(), HasSubstr("sd_notify to " + dir.path() + "/nobody"));
  }
  {
    // A socket file nobody receives on any more.
    std::string path = dir.path() + "/gone";
    { NotifyReceiver gone(path); }
    ScopedEnv env("NOTIFY_SOCKET", path);
    EXPECT_TRUE(absl::IsUnavailable(SdNotify("READY=1")));
  }
}

TEST(SdWatchdogIntervalTest, FromTheEnvironment) {
  std::string self = std::to_string(getpid());
  struct Case {
    std::optional<std::string> usec, pid;
    absl::Duration want;
  };
  const Case cases[] = {
      {std::nullopt, std::nullopt, absl::ZeroDuration()},
      {"5000000", std::nullopt, absl::Seconds(5)},
      {"5000000", self, absl::Seconds(5)},
      {"1", self, absl::Microseconds(1)},
      {"5000000", "1", absl::ZeroDuration()},  // meant for another process
      {"5000000", "x", absl::ZeroDuration()},
      {"0", std::nullopt, absl::ZeroDuration()},
      {"", std::nullopt, absl::ZeroDuration()},
      {"abc", std::nullopt, absl::ZeroDuration()},
      {"-5", std::nullopt, absl::ZeroDuration()},
      // Not a number as a whole, or beyond what a duration holds: none.
      {"5000000abc", std::nullopt, absl::ZeroDuration()},
      {"18446744073709551615", std::nullopt, absl::ZeroDuration()},
      {"99999999999999999999999", std::nullopt, absl::ZeroDuration()},
  };
  for (const Case& c : cases) {
    ScopedEnv usec("WATCHDOG_USEC", c.usec);
    ScopedEnv pid("WATCHDOG_PID", c.pid);
    EXPECT_EQ(SdWatchdogInterval(), c.want) << "WATCHDOG_USEC=" << c.usec.value_or("(unset)")
                                            << " WATCHDOG_PID=" << c.pid.value_or("(unset)");
  }
}

}  // namespace
}  // namespace nodedns
