#ifndef NODEDNS_LIB_RESOLVER_CLIENT_SHARE_H_
#define NODEDNS_LIB_RESOLVER_CLIENT_SHARE_H_

// Who a client is, and how much of a worker's upstream work it asks for, so
// that one client flooding unique names (a crash-looping pod, a
// random-subdomain attack) cannot starve the misses of the others. Cache hits
// never come here.
//
//  - A client is its source address (IPv4 /32 by default) or prefix (IPv6
//    /64 by default: one host usually holds a whole /64). ClientFlow() turns
//    it into a FlowId, which the upstream pool's fair queue also uses.
//  - Recent misses: per client, the misses that would start an upstream
//    query over a sliding window of two buckets (`window` each). A client is
//    *heavy* when another client asked misses in the window too, and its
//    recent misses are at least min_client_misses per second and at least the
//    average of the clients seen in the window (its fair share). Only heavy
//    clients are shed when the worker is overloaded; a lone client (a pod
//    starting up) never is.
//  - Pending misses: per client, the upstream queries it started that are
//    still open. Under pending pressure a client holding its share or more
//    starts no new ones.
//
// Memory is bounded: at most max_clients are tracked in the window (clients
// beyond that are accounted together as one, kUntracked, which is heavy as a
// whole soon enough), a client leaves the window table when a window passes
// without its misses, and the pending table holds only clients with open
// queries (bounded by max_pending).
//
// Threading: one loop thread (the resolver's); not thread-safe.

#include <cstddef>
#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "lib/common/socket_address.h"
#include "lib/resolver/options.h"
#include "lib/upstream/upstream.h"

namespace nodedns::resolver {

// The flow of a client: a 64-bit mix of its address under the prefix (never
// upstream::kNoFlow, nor kUntracked). Two clients share a flow only by a hash
// collision.
upstream::FlowId ClientFlow(const SocketAddress& peer, int ipv4_prefix, int ipv6_prefix);

class ClientShares {
 public:
  // The clients beyond max_clients, as one.
  static constexpr upstream::FlowId kUntracked = 1;

  explicit ClientShares(const FairShareOptions& options) : options_(options) {}

  // A miss of `flow` that would start an upstream query, at `now`. Returns
  // true when the client is heavy (this miss included). Counts into the
  // untracked flow when the table is full (*untracked set).
  bool NoteMiss(upstream::FlowId flow, absl::Time now, bool* untracked);

  void AddPending(upstream::FlowId flow);
  void RemovePending(upstream::FlowId flow);
  // Holds at least its share of `total` open queries: max(min_client_pending,
  // total / clients with open queries).
  bool OverPendingShare(upstream::FlowId flow, size_t total) const;

  size_t tracked() const { return window_.size(); }
  size_t pending_clients() const { return pending_.size(); }
  size_t pending_of(upstream::FlowId flow) const {
    auto it = pending_.find(flow);
    return it == pending_.end() ? 0 : it->second;
  }
  // The client's misses over the last window, weighted (the previous bucket
  // by the share of it still inside the sliding window).
  double recent(upstream::FlowId flow, absl::Time now);

 private:
  struct Counts {
    uint32_t previous = 0;
    uint32_t current = 0;
  };
  void Rotate(absl::Time now);
  double Weight(absl::Time now) const;

  const FairShareOptions options_;
  absl::flat_hash_map<upstream::FlowId, Counts> window_;
  Counts total_;
  absl::Time bucket_start_ = absl::InfinitePast();
  absl::flat_hash_map<upstream::FlowId, uint32_t> pending_;
};

}  // namespace nodedns::resolver

#endif  // NODEDNS_LIB_RESOLVER_CLIENT_SHARE_H_
