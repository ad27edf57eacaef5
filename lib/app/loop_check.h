#ifndef NODEDNS_LIB_APP_LOOP_CHECK_H_
#define NODEDNS_LIB_APP_LOOP_CHECK_H_

// Forwarding-loop detection at start-up and at reload (CoreDNS's `loop`
// plugin): a query for a random name under each zone ("_nodedns-loop-<hex>.
// ZONE", type HINFO) goes to each of the zone's servers, while the workers'
// resolvers watch for that name (resolver::LoopProbes). If it comes back in,
// the zone's servers lead back to this nodedns, directly, through
// resolv.conf, or through a stub (systemd-resolved's 127.0.0.53) forwarding
// to us: the zone is refused with an error naming it, the server and the
// probe. A server that does not answer within `wait` proves nothing either
// way (an upstream that is down must not stop nodedns from starting).
//
// Threading: the control thread; it blocks for at most `wait` while the
// workers serve on their own threads.

#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "lib/resolver/loop_probes.h"
#include "lib/server/options.h"

namespace nodedns::app {

// How long the probes wait for their answers.
inline constexpr absl::Duration kLoopProbeWait = absl::Seconds(1);

// Probes the zones of `zones` that `running` does not already have with the
// same servers (all of them when `running` is null). FailedPrecondition for
// the first zone that loops.
absl::Status CheckForwardingLoops(const std::vector<server::ZoneOptions>& zones,
                                  const std::vector<server::ZoneOptions>* running, resolver::LoopProbes* probes,
                                  absl::Duration wait = kLoopProbeWait);

}  // namespace nodedns::app

#endif  // NODEDNS_LIB_APP_LOOP_CHECK_H_
