#ifndef NODEDNS_LIB_RESOLVER_LOOP_PROBES_H_
#define NODEDNS_LIB_RESOLVER_LOOP_PROBES_H_

// Forwarding-loop detection, as CoreDNS's `loop` plugin does it: the daemon
// asks each zone's servers for a random name that only it knows (the probe,
// lib/app/loop_check.h). If a listener then receives a query for that name,
// the zone's servers lead back to this nodedns: directly, through
// resolv.conf, or through a stub such as systemd-resolved forwarding to us.
// The resolver answers such a query SERVFAIL at once and never forwards it,
// so a loop cannot carry it around.
//
// Threading: thread-safe. The control thread arms and disarms; every
// worker's resolver calls Seen() for each query, which costs one relaxed
// atomic load while nothing is armed.

#include <atomic>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "lib/common/mutex.h"

namespace nodedns::resolver {

class LoopProbes {
 public:
  // Names in wire format, any case. Replaces what was armed.
  void Arm(const std::vector<std::string>& names);
  void Disarm();
  // True, and counted, if `qname_wire` (any case) is an armed probe.
  bool Seen(std::string_view qname_wire);
  // How often `name_wire` came back while armed.
  int hits(std::string_view name_wire) const;

 private:
  std::atomic<bool> armed_{false};
  mutable Mutex mu_;
  absl::flat_hash_map<std::string, int> hits_ ABSL_GUARDED_BY(mu_);  // lowercased wire
};

}  // namespace nodedns::resolver

#endif  // NODEDNS_LIB_RESOLVER_LOOP_PROBES_H_
