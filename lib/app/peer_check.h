#ifndef NODEDNS_LIB_APP_PEER_CHECK_H_
#define NODEDNS_LIB_APP_PEER_CHECK_H_

// Other nodedns processes on this node, judged from kernel facts rather than
// from what a request claims:
//  - a twin: a second nodedns (another control socket, so no handover)
//    binding the same DNS or metrics address would join its SO_REUSEPORT
//    group, and the kernel would split queries and scrapes between the two;
//  - a successor: a starting nodedns that asks for a snapshot (handover) and
//    then for the control socket (release). Anyone in the socket's group can
//    send those requests; they are honoured only from a process of our own
//    user (the only one that can join our reuseport groups) that runs a
//    nodedns binary, speaks our handover protocol and, for release, has
//    already bound every one of our DNS addresses beside us.
//
// Reads /proc; a process we may not inspect (another PID namespace, another
// user) is judged on what remains visible: its credentials and the sockets.

#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "lib/common/socket_address.h"
#include "lib/control/commands.h"
#include "lib/control/peer.h"

namespace nodedns::app {

// FailedPrecondition naming the other process if a socket not held by this
// process listens on one of `dns` (UDP or TCP) or of `http` (TCP: the
// metrics and health endpoints). Addresses with port 0 are skipped (the
// kernel picks a free port).
absl::Status RefuseTwins(const std::vector<SocketAddress>& dns, const std::vector<SocketAddress>& http);

// The executable a successor runs (tests pass their own).
inline constexpr char kNodednsExecutable[] = "nodedns";

// For handover: PermissionDenied unless `peer` may be a starting nodedns.
absl::Status VerifyStartingNodedns(const control::PeerCredentials& peer, int64_t protocol,
                                   std::string_view executable = kNodednsExecutable);

// For release: PermissionDenied unless `peer` also serves every one of
// `ours`, as `request` says, with sockets of its own beside ours.
absl::Status VerifySuccessor(const control::PeerCredentials& peer, const control::ReleaseRequest& request,
                             const std::vector<SocketAddress>& ours,
                             std::string_view executable = kNodednsExecutable);

// True while another process (a successor) has a UDP socket on each of
// `ours`; false once it has gone.
bool OthersServe(const std::vector<SocketAddress>& ours);

}  // namespace nodedns::app

#endif  // NODEDNS_LIB_APP_PEER_CHECK_H_
