#include "lib/control/unix_socket.h"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lib/common/errno_status.h"

namespace nodedns::control {
namespace {

absl::StatusOr<sockaddr_un> Address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError("control socket path '" + path + "' is empty or longer than " +
                                      std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

absl::Status BindOnce(int fd, const sockaddr_un& addr, int mode) {
  // The file is created with the final permissions: no window in which a
  // wider mode is visible.
  mode_t old = umask(static_cast<mode_t>(~mode & 0777));
  int rc = bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  umask(old);
  return rc == 0 ? absl::OkStatus() : ErrnoStatus(err, std::string("bind ") + addr.sun_path);
}

// The owner's uid and the group's gid; -1 for "" (keep the process's).
absl::Status LookUpOwnership(const UnixSocketOptions& o, uid_t* uid, gid_t* gid) {
  if (!o.owner.empty()) {
    passwd* pw = getpwnam(o.owner.c_str());
    if (pw == nullptr) return absl::NotFoundError("control socket owner: no user '" + o.owner + "'");
    *uid = pw->pw_uid;
  }
  if (!o.group.empty()) {
    group* gr = getgrnam(o.group.c_str());
    if (gr == nullptr) return absl::NotFoundError("control socket group: no group '" + o.group + "'");
    *gid = gr->gr_gid;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckUnixSocketOptions(const UnixSocketOptions& o) {
  if (auto addr = Address(o.path); !addr.ok()) return addr.status();
  uid_t uid;
  gid_t gid;
  return LookUpOwnership(o, &uid, &gid);
}

absl::StatusOr<int> ConnectUnix(const std::string& path) {
  auto addr = Address(path);
  if (!addr.ok()) return addr.status();
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, "socket");
  if (connect(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    int err = errno;
    close(fd);
    return ErrnoStatus(err, "connect " + path);
  }
  return fd;
}

absl::StatusOr<UnixListener> ListenUnix(const UnixSocketOptions& o) {
  auto addr = Address(o.path);
  if (!addr.ok()) return addr.status();
  if (size_t slash = o.path.rfind('/'); slash != std::string::npos && slash > 0) {
    std::string dir = o.path.substr(0, slash);
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, "cannot create the control socket's directory " + dir);
    }
  }
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  if (auto st = LookUpOwnership(o, &uid, &gid); !st.ok()) return st;
  // Where to bind: the path itself, or a temporary name renamed over it.
  std::string bind_path = o.replace_live ? o.path + ".new." + std::to_string(getpid()) : o.path;
  auto bind_addr = Address(bind_path);
  if (!bind_addr.ok()) return bind_addr.status();
  if (o.replace_live) unlink(bind_path.c_str());  // a leftover of a crashed attempt
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return ErrnoStatus(errno, "socket(AF_UNIX)");
  auto fail = [fd, &o, &bind_path](absl::Status st) {
    close(fd);
    if (o.replace_live) unlink(bind_path.c_str());
    return st;
  };
  absl::Status st = BindOnce(fd, *bind_addr, o.mode);
  if (absl::IsAlreadyExists(st) && !o.replace_live) {
    // Someone's file. A live socket belongs to a running process (another
    // nodedns?): never take it over. A socket nobody answers on is what a
    // crashed run leaves: replace it. Anything else is not ours to delete.
    struct stat sb;
    if (lstat(o.path.c_str(), &sb) == 0 && !S_ISSOCK(sb.st_mode)) {
      return fail(absl::AlreadyExistsError(o.path + " exists and is not a socket; not replacing it"));
    }
    auto probe = ConnectUnix(o.path);
    if (probe.ok()) {
      close(*probe);
      return fail(absl::AlreadyExistsError("another process is serving on " + o.path +
                                           " (is nodedns already running? --takeover hands over from it "
                                           "without a gap)"));
    }
    if (unlink(o.path.c_str()) != 0 && errno != ENOENT) {
      return fail(ErrnoStatus(errno, "cannot remove the stale socket " + o.path));
    }
    st = BindOnce(fd, *bind_addr, o.mode);
  }
  if (!st.ok()) return fail(st);
  // The umask cannot add bits (e.g. group write under umask 022 callers).
  if (chmod(bind_path.c_str(), static_cast<mode_t>(o.mode)) != 0) {
    return fail(ErrnoStatus(errno, "chmod " + bind_path));
  }
  if ((uid != static_cast<uid_t>(-1) || gid != static_cast<gid_t>(-1)) && chown(bind_path.c_str(), uid, gid) != 0) {
    return fail(ErrnoStatus(errno, "chown " + bind_path));
  }
  if (listen(fd, 128) != 0) return fail(ErrnoStatus(errno, "listen " + bind_path));
  if (o.replace_live && rename(bind_path.c_str(), o.path.c_str()) != 0) {
    return fail(ErrnoStatus(errno, "rename " + bind_path + " to " + o.path));
  }
  UnixListener l;
  l.fd = fd;
  struct stat sb;
  if (stat(o.path.c_str(), &sb) == 0) {
    l.dev = sb.st_dev;
    l.ino = sb.st_ino;
  }
  return l;
}

bool IsOurUnixSocket(const std::string& path, const UnixListener& listener) {
  struct stat sb;
  return lstat(path.c_str(), &sb) == 0 && sb.st_dev == listener.dev && sb.st_ino == listener.ino;
}

void RemoveUnixSocket(const std::string& path, const UnixListener& listener) {
  if (IsOurUnixSocket(path, listener)) unlink(path.c_str());
}

}  // namespace nodedns::control
