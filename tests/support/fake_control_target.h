#ifndef NODEDNS_TESTS_SUPPORT_FAKE_CONTROL_TARGET_H_
#define NODEDNS_TESTS_SUPPORT_FAKE_CONTROL_TARGET_H_

// A ControlTarget for the control protocol's unit tests and fuzzers: a real
// cache with a few entries (dump and flush act on it), canned stats, and
// handlers that record what they were asked and answer what the test set.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lib/control/control_target.h"

namespace nodedns::testing {

class FakeControlTarget : public control::ControlTarget {
 public:
  FakeControlTarget();

  // Puts back the cache's entries: fresh.example and other.example (A and
  // AAAA) fresh, stale.example expired 100 s ago.
  void ResetCache();

  control::StatsSnapshot Stats() override;
  std::vector<control::ZoneSummary> Zones() override;
  cache::Cache& Cache() override { return *cache_; }
  absl::Time CacheNow() override { return absl::Now(); }
  control::HealthStatus Health() override { return health; }
  absl::StatusOr<nlohmann::json> Reload() override;
  void Snapshot(Done done) override;
  absl::StatusOr<nlohmann::json> Handover(const control::HandoverRequest& request,
                                          const control::PeerCredentials& peer) override;
  absl::StatusOr<nlohmann::json> Release(const control::ReleaseRequest& request,
                                         const control::PeerCredentials& peer) override;

  // Answers the snapshot requests waiting (Snapshot answers later, like the
  // daemon's thread pool write).
  void FinishSnapshots();

  control::HealthStatus health{true, true, ""};
  absl::Status reload_result = absl::OkStatus();
  absl::Status peer_result = absl::PermissionDeniedError("not a successor");
  // Throws from Stats(), to exercise the exception boundaries.
  bool throw_from_stats = false;
  int reloads = 0;
  std::vector<control::HandoverRequest> handovers;
  std::vector<control::ReleaseRequest> releases;

 private:
  std::unique_ptr<cache::Cache> cache_;
  std::vector<Done> snapshot_waiters_;
};

}  // namespace nodedns::testing

#endif  // NODEDNS_TESTS_SUPPORT_FAKE_CONTROL_TARGET_H_
