#ifndef NODEDNS_LIB_APP_PROCESS_H_
#define NODEDNS_LIB_APP_PROCESS_H_

// The process itself: the account --user names (looked up before anything is
// bound), the privilege drop once everything is bound, and the ready file
// scripts wait for.

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace nodedns::app {

struct RunAs {
  uid_t uid;
  gid_t gid;
};

// NotFound for an unknown user; PermissionDenied unless we are root or that
// user already.
absl::StatusOr<RunAs> LookUpUser(const std::string& user);

// Runs as that user from now on: its uid, its primary group only, and
// thereby no capabilities (they go with the uid change from root); no new
// privileges either. Internal if root could be regained.
absl::Status DropPrivileges(const RunAs& as);

// One line per entry, written to PATH.tmp and renamed, so a reader never sees
// half a file.
bool WriteReadyFile(const std::string& path, const std::vector<std::string>& lines);

}  // namespace nodedns::app

#endif  // NODEDNS_LIB_APP_PROCESS_H_
