#ifndef NODEDNS_LIB_CONTROL_CONTROL_TARGET_H_
#define NODEDNS_LIB_CONTROL_CONTROL_TARGET_H_

// What the control socket and the HTTP endpoint act on. The daemon's
// composition root (app::App) implements it; the control code never reaches
// into the app, and the fuzzers and unit tests drive the real request
// handling against a fake.
//
// Threading: every method is called on the control loop's thread.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lib/cache/cache.h"
#include "lib/control/commands.h"
#include "lib/control/peer.h"
#include "lib/control/stats.h"

namespace nodedns::control {

struct ZoneSummary {
  std::string name;
  std::vector<std::string> servers;
  int64_t max_stale_seconds = 0;
  bool last_known_good = false;
};

struct HealthStatus {
  bool healthy = false;  // every worker loop turns
  bool ready = false;    // serving, not shutting down
  std::string detail;    // why not healthy
};

class ControlTarget {
 public:
  // The fields of a successful answer ("ok" is added), or the error.
  using Done = std::function<void(absl::StatusOr<nlohmann::json>)>;

  virtual ~ControlTarget() = default;
  virtual StatsSnapshot Stats() = 0;
  virtual std::vector<ZoneSummary> Zones() = 0;
  virtual cache::Cache& Cache() = 0;
  // Now, on the clock the cache's deadlines are kept in (dump reports each
  // entry's remaining TTL or stale age against it).
  virtual absl::Time CacheNow() = 0;
  virtual HealthStatus Health() = 0;
  virtual absl::StatusOr<nlohmann::json> Reload() = 0;
  // Writes the snapshot and calls `done` once written (possibly later, on
  // this thread).
  virtual void Snapshot(Done done) = 0;
  // A starting nodedns asks for a current snapshot (step 1 of a handover).
  virtual absl::StatusOr<nlohmann::json> Handover(const HandoverRequest& request, const PeerCredentials& peer) = 0;
  // The successor serves and asks for the control socket (step 2).
  virtual absl::StatusOr<nlohmann::json> Release(const ReleaseRequest& request, const PeerCredentials& peer) = 0;
};

}  // namespace nodedns::control

#endif  // NODEDNS_LIB_CONTROL_CONTROL_TARGET_H_
