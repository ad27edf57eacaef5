#include "lib/control/unix_socket.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/daemon_process.h"

namespace nodedns::control {
namespace {

using ::testing::HasSubstr;

UnixSocketOptions Options(const std::string& path, int mode = 0660, bool replace_live = false) {
  UnixSocketOptions o;
  o.path = path;
  o.mode = mode;
  o.replace_live = replace_live;
  return o;
}

class UnixSocketTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (int fd : fds_) close(fd);
  }
  // Listens, and remembers the descriptor to close.
  absl::StatusOr<UnixListener> Listen(UnixSocketOptions o) {
    auto l = ListenUnix(o);
    if (l.ok()) fds_.push_back(l->fd);
    return l;
  }
  static struct stat Stat(const std::string& path) {
    struct stat sb {};
    EXPECT_EQ(lstat(path.c_str(), &sb), 0) << path;
    return sb;
  }
  static bool Exists(const std::string& path) {
    struct stat sb;
    return lstat(path.c_str(), &sb) == 0;
  }
  // True if a connection to `path` is accepted on `listener`'s descriptor.
  static bool Answers(const std::string& path, const UnixListener& listener) {
    auto c = ConnectUnix(path);
    if (!c.ok()) return false;
    int accepted = accept(listener.fd, nullptr, nullptr);
    close(*c);
    if (accepted < 0) return false;
    close(accepted);
    return true;
  }

  nodedns::testing::TempDir dir_;
  std::vector<int> fds_;
};

TEST_F(UnixSocketTest, CreatesTheDirectoryAndTheSocketWithItsMode) {
  std::string path = dir_.path() + "/run/control.sock";
  mode_t old = umask(022);
  auto l = Listen(Options(path, 0600));
  umask(old);
  ASSERT_TRUE(l.ok()) << l.status();
  struct stat d = Stat(dir_.path() + "/run");
  EXPECT_TRUE(S_ISDIR(d.st_mode));
  EXPECT_EQ(d.st_mode & 07777, 0755u);
  struct stat s = Stat(path);
  EXPECT_TRUE(S_ISSOCK(s.st_mode));
  EXPECT_EQ(s.st_mode & 07777, 0600u);
  EXPECT_EQ(s.st_ino, l->ino);
  EXPECT_EQ(s.st_dev, l->dev);
  // Listening, non-blocking, close-on-exec.
  EXPECT_TRUE(fcntl(l->fd, F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(fcntl(l->fd, F_GETFD) & FD_CLOEXEC);
  EXPECT_TRUE(Answers(path, *l));
  EXPECT_TRUE(IsOurUnixSocket(path, *l));
  RemoveUnixSocket(path, *l);
  EXPECT_FALSE(Exists(path));
}

TEST_F(UnixSocketTest, ModeIsExactWhateverTheUmask) {
  mode_t old = umask(022);
  auto wide = Listen(Options(dir_.path() + "/wide.sock", 0666));
  umask(077);
  auto group = Listen(Options(dir_.path() + "/group.sock", 0660));
  // The caller's umask is restored.
  EXPECT_EQ(umask(old), 077u);
  ASSERT_TRUE(wide.ok()) << wide.status();
  ASSERT_TRUE(group.ok()) << group.status();
  EXPECT_EQ(Stat(dir_.path() + "/wide.sock").st_mode & 07777, 0666u);
  EXPECT_EQ(Stat(dir_.path() + "/group.sock").st_mode & 07777, 0660u);
}

TEST_F(UnixSocketTest, OwnerAndGroupByName) {
  passwd* pw = getpwuid(geteuid());
  group* gr = getgrgid(getegid());
  if (pw == nullptr || gr == nullptr) GTEST_SKIP() << "the test's user or group has no name";
  std::string path = dir_.path() + "/owned.sock";
  UnixSocketOptions o = Options(path);
  o.owner = pw->pw_name;
  o.group = gr->gr_name;
  auto l = Listen(o);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(Stat(path).st_uid, geteuid());
  EXPECT_EQ(Stat(path).st_gid, getegid());
}

TEST_F(UnixSocketTest, UnknownOwnerOrGroupIsRefusedBeforeAnythingIsCreated) {
  std::string path = dir_.path() + "/x.sock";
  UnixSocketOptions o = Options(path);
  o.owner = "nodedns-no-such-user";
  auto owner = Listen(o);
  ASSERT_FALSE(owner.ok());
  EXPECT_TRUE(absl::IsNotFound(owner.status()));
  EXPECT_THAT(owner.status().message(), HasSubstr("no user 'nodedns-no-such-user'"));
  o = Options(path);
  o.group = "nodedns-no-such-group";
  auto grp = Listen(o);
  ASSERT_FALSE(grp.ok());
  EXPECT_THAT(grp.status().message(), HasSubstr("no group 'nodedns-no-such-group'"));
  EXPECT_FALSE(Exists(path));
}

TEST_F(UnixSocketTest, RefusesToTakeALiveSocket) {
  std::string path = dir_.path() + "/control.sock";
  auto first = Listen(Options(path));
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = Listen(Options(path));
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::IsAlreadyExists(second.status()));
  EXPECT_THAT(second.status().message(), HasSubstr("another process is serving on " + path));
  EXPECT_THAT(second.status().message(), HasSubstr("--takeover"));
  // The first keeps its file and its clients.
  EXPECT_TRUE(IsOurUnixSocket(path, *first));
  EXPECT_TRUE(Answers(path, *first));
}

TEST_F(UnixSocketTest, ReplacesAStaleSocket) {
  std::string path = dir_.path() + "/control.sock";
  auto crashed = ListenUnix(Options(path));
  ASSERT_TRUE(crashed.ok()) << crashed.status();
  close(crashed->fd);  // a crash: the file stays, nobody answers
  ASSERT_TRUE(Exists(path));
  auto next = Listen(Options(path));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_TRUE(IsOurUnixSocket(path, *next));
  EXPECT_TRUE(Answers(path, *next));
}

TEST_F(UnixSocketTest, NeverReplacesWhatIsNotASocket) {
  std::string file = dir_.Write("control.sock", "precious\n");
  auto l = Listen(Options(file));
  ASSERT_FALSE(l.ok());
  EXPECT_TRUE(absl::IsAlreadyExists(l.status()));
  EXPECT_THAT(l.status().message(), HasSubstr("is not a socket"));
  std::ifstream in(file);
  std::stringstream content;
  content << in.rdbuf();
  EXPECT_EQ(content.str(), "precious\n");

  // A symbolic link, even to a stale socket, is not replaced either.
  std::string target = dir_.path() + "/target.sock";
  auto crashed = ListenUnix(Options(target));
  ASSERT_TRUE(crashed.ok());
  close(crashed->fd);
  std::string link = dir_.path() + "/link.sock";
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  EXPECT_THAT(Listen(Options(link)).status().message(), HasSubstr("is not a socket"));
  EXPECT_TRUE(Exists(target));
  EXPECT_TRUE(S_ISLNK(Stat(link).st_mode));
}

TEST_F(UnixSocketTest, ReplaceLiveTakesThePathOverAndTheOldOwnerLeavesItAlone) {
  std::string path = dir_.path() + "/control.sock";
  auto old_owner = Listen(Options(path, 0600));
  ASSERT_TRUE(old_owner.ok()) << old_owner.status();
  auto successor = Listen(Options(path, 0640, true));
  ASSERT_TRUE(successor.ok()) << successor.status();
  EXPECT_TRUE(IsOurUnixSocket(path, *successor));
  EXPECT_FALSE(IsOurUnixSocket(path, *old_owner));
  EXPECT_EQ(Stat(path).st_mode & 07777, 0640u);
  // New clients reach the successor only.
  EXPECT_TRUE(Answers(path, *successor));
  EXPECT_LT(accept(old_owner->fd, nullptr, nullptr), 0);
  // The old owner's shutdown removes nothing that is not its own.
  RemoveUnixSocket(path, *old_owner);
  EXPECT_TRUE(Exists(path));
  EXPECT_TRUE(Answers(path, *successor));
  // No temporary name is left behind.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    ++files;
    EXPECT_EQ(e.path().filename().string(), "control.sock");
  }
  EXPECT_EQ(files, 1);
  RemoveUnixSocket(path, *successor);
  EXPECT_FALSE(Exists(path));
}

TEST_F(UnixSocketTest, ReplaceLiveWorksWithNothingThere) {
  std::string path = dir_.path() + "/control.sock";
  auto l = Listen(Options(path, 0660, true));
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_TRUE(IsOurUnixSocket(path, *l));
  EXPECT_TRUE(Answers(path, *l));
}

TEST_F(UnixSocketTest, BadPaths) {
  for (const std::string& bad : {std::string(), dir_.path() + "/" + std::string(120, 'x')}) {
    auto l = Listen(Options(bad));
    ASSERT_FALSE(l.ok());
    EXPECT_TRUE(absl::IsInvalidArgument(l.status())) << l.status();
    EXPECT_THAT(l.status().message(), HasSubstr("is empty or longer than 107 bytes"));
  }
  // Only the last directory is created.
  auto deep = Listen(Options(dir_.path() + "/a/b/control.sock"));
  ASSERT_FALSE(deep.ok());
  EXPECT_TRUE(absl::IsNotFound(deep.status())) << deep.status();
  EXPECT_THAT(deep.status().message(), HasSubstr("cannot create the control socket's directory"));
}

TEST_F(UnixSocketTest, ConnectUnixErrors) {
  auto missing = ConnectUnix(dir_.path() + "/none.sock");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  std::string path = dir_.path() + "/stale.sock";
  auto crashed = ListenUnix(Options(path));
  ASSERT_TRUE(crashed.ok());
  close(crashed->fd);
  auto refused = ConnectUnix(path);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("connect " + path));
}

TEST_F(UnixSocketTest, IsOurUnixSocketOfAMissingPath) {
  std::string path = dir_.path() + "/control.sock";
  auto l = Listen(Options(path));
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(unlink(path.c_str()), 0);
  EXPECT_FALSE(IsOurUnixSocket(path, *l));
  RemoveUnixSocket(path, *l);  // nothing to remove: no error, no crash
  EXPECT_FALSE(Exists(path));
}

}  // namespace
}  // namespace nodedns::control
