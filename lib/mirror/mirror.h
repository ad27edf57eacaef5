#ifndef NODEDNS_LIB_MIRROR_MIRROR_H_
#define NODEDNS_LIB_MIRROR_MIRROR_H_

// Mirrored zones ([[zone]] mirror = true, README "Mirrored zones"): the zone
// is transferred from its servers by AXFR (CoreDNS's `transfer` plugin
// serves the cluster zone) and its records are stored in the cache as
// ordinary entries with their TTLs, one per name and type, so that this node
// can answer every name in the zone, fresh or stale by the usual rules,
// including names it was never asked. The mirror adds answers; it takes no
// authority: a name absent from the mirror is asked upstream as always, and
// nothing is synthesised.
//
// Each zone's SOA serial is checked every check_interval (jittered per node
// and per check, so that thousands of nodes spread out); the zone is
// transferred again only when the serial changed, not more often than
// min_transfer_interval (a failed attempt included), only while the zone is healthy for the data plane
// (MayTransfer), within the caps on records, bytes and time. A failed
// or partial transfer changes nothing that is cached. A record from the mirror
// never replaces an entry stored after its transfer began (a fresher answer
// to a direct query).
//
// Threading: the mirror runs on a thread of its own (blocking I/O with
// deadlines); the cache is thread-safe; Status() may be called from any
// thread. Lifetime: Stop() (or the destructor) joins the thread.

#include <atomic>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "lib/cache/cache.h"
#include "lib/common/clock.h"
#include "lib/common/socket_address.h"
#include "lib/dns/cache_image.h"
#include "lib/mirror/axfr.h"
#include "lib/mirror/options.h"
#include "lib/mirror/status.h"

namespace nodedns::mirror {

struct MirroredZone {
  std::string name;  // presentation form
  std::vector<SocketAddress> servers;
  absl::Duration max_stale;
};

// Stores a transferred zone in `cache`: one entry per (name, type), keyed as
// stub resolvers ask (no DO, no CD), skipping keys whose entry was stored at
// or after `since`, names outside the zone and names at or below a
// delegation in it. Stops early when *cancel turns true. Returns the
// entries stored.
size_t Install(const Zone& zone, const dns::ImagePolicy& policy, cache::Cache* cache, absl::Time now,
               absl::Duration max_stale, absl::Time since, const std::atomic<bool>* cancel = nullptr);

class Mirror {
 public:
  // Asked before each transfer with the zone's name: false defers it to the
  // next check (the zone is not healthy: its servers are failing or
  // recovering, and a whole zone is the last thing to ask of them then).
  using MayTransfer = std::function<bool(const std::string& zone)>;

  // `image`: the TTL clamps answers get (resolver options). `may_transfer`:
  // nullptr for always.
  Mirror(std::vector<MirroredZone> zones, const MirrorOptions& options, const dns::ImagePolicy& image,
         cache::Cache* cache, const SteadyClock* clock, uint64_t seed, MayTransfer may_transfer = nullptr);
  ~Mirror();
  Mirror(const Mirror&) = delete;
  Mirror& operator=(const Mirror&) = delete;

  // The thread: each zone's first check comes after a random share of the
  // interval (a fleet restarted together does not transfer together).
  // Before Start: carries over what a previous mirror (before a reload)
  // knew of the same zones (serial, times, counts), so that a reload does not
  // cost a transfer.
  void Adopt(const std::vector<MirrorStatus>& previous);
  void Start();
  void Stop();
  // One check of zone `i`: the serial, then a transfer if it changed (what
  // the thread does; tests call it directly).
  void CheckZone(size_t i);
  std::vector<MirrorStatus> Status() const;

 private:
  void Run();

  const std::vector<MirroredZone> zones_;
  const MirrorOptions options_;
  const dns::ImagePolicy image_;
  const MayTransfer may_transfer_;
  cache::Cache* const cache_;
  const SteadyClock* const clock_;
  std::mt19937_64 rng_;  // the thread's (and CheckZone's caller's)
  mutable absl::Mutex mu_;
  std::vector<MirrorStatus> status_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> cancel_{false};  // stop_, for the blocking I/O
  std::thread thread_;
};

}  // namespace nodedns::mirror

#endif  // NODEDNS_LIB_MIRROR_MIRROR_H_
