#include "lib/app/process.h"

#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>

#include "lib/common/errno_status.h"

namespace nodedns::app {

absl::StatusOr<RunAs> LookUpUser(const std::string& user) {
  passwd* pw = getpwnam(user.c_str());
  if (pw == nullptr) return absl::NotFoundError("--user: no user '" + user + "'");
  if (geteuid() != 0 && geteuid() != pw->pw_uid) {
    return absl::PermissionDeniedError("--user " + user + " needs nodedns to be started as root");
  }
  return RunAs{pw->pw_uid, pw->pw_gid};
}

absl::Status DropPrivileges(const RunAs& as) {
  if (getuid() == as.uid && geteuid() == as.uid) return absl::OkStatus();
  if (setgroups(1, &as.gid) != 0) return ErrnoStatus(errno, "setgroups");
  if (setgid(as.gid) != 0) return ErrnoStatus(errno, "setgid");
  if (setuid(as.uid) != 0) return ErrnoStatus(errno, "setuid");
  if (setuid(0) == 0) return absl::InternalError("--user: still able to become root after dropping privileges");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return ErrnoStatus(errno, "prctl(PR_SET_NO_NEW_PRIVS)");
  return absl::OkStatus();
}

bool WriteReadyFile(const std::string& path, const std::vector<std::string>& lines) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& l : lines) out << l << "\n";
    if (!out.flush()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace nodedns::app
