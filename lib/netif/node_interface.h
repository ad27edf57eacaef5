#ifndef NODEDNS_LIB_NETIF_NODE_INTERFACE_H_
#define NODEDNS_LIB_NETIF_NODE_INTERFACE_H_

// The node-local address, as NodeLocal DNSCache sets it up: a dummy
// interface (default nodedns0) holding the link-local address (default
// 169.254.20.10) and optionally the cluster DNS service IP, made through
// rtnetlink; optionally an nftables table (inet nodedns) with raw-table
// NOTRACK rules for DNS on those addresses, so queries skip conntrack.
//
// Setup makes the interface and its addresses; InstallRules, called once the
// daemon is bound, adds the NOTRACK rules: until then, queries to a service
// IP held here still take kube-proxy's DNAT to the service's pods rather
// than reaching an address nobody listens on yet.
//
// Ownership and crashes: the interface carries the alias "managed by
// nodedns". A daemon that finds such an interface (left by a crash, or by
// the predecessor in a handover) adopts it; an interface of that name
// without the alias is someone else's and is never touched. The nftables
// table is replaced as a whole, atomically. Teardown removes both. Kernels
// without the dummy driver get a bridge without ports instead (same
// effect: a local address on an interface that carries no traffic).
//
// Threading: call from one thread (the daemon's control thread).

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/common/socket_address.h"

namespace nodedns::netif {

struct InterfaceOptions {
  std::string name = "nodedns0";
  // Each gets a /32 (IPv4) or /128 (IPv6); the port is used by the NOTRACK
  // rules.
  std::vector<SocketAddress> addresses;
  bool notrack = false;
  std::string nft = "nft";  // the nftables command
};

inline constexpr char kAlias[] = "managed by nodedns";

class NodeInterface {
 public:
  static absl::StatusOr<std::unique_ptr<NodeInterface>> Setup(const InterfaceOptions& options);
  ~NodeInterface() = default;

  // The NOTRACK rules (options.notrack), replacing the table as a whole.
  absl::Status InstallRules();
  // Removes the interface (its addresses go with it) and the nftables table.
  absl::Status Teardown();
  // The same for a daemon that is gone (the fail-open supervisor, --withdraw):
  // the table (if o.notrack), then the interface if it carries our alias.
  // *removed: whether an interface was there to remove.
  static absl::Status Remove(const InterfaceOptions& o, bool* removed);
  // Its two steps, in that order (the fail-open supervisor times each): the
  // rules (nfnetlink, a fraction of a millisecond), the interface (tens of
  // milliseconds: the kernel waits for an RCU grace period).
  static absl::Status RemoveRules(const InterfaceOptions& o);
  static absl::Status RemoveLink(const InterfaceOptions& o, bool* removed);
  bool adopted() const { return adopted_; }
  const std::string& kind() const { return kind_; }

 private:
  explicit NodeInterface(const InterfaceOptions& o) : options_(o) {}
  InterfaceOptions options_;
  bool adopted_ = false;
  std::string kind_;
};

}  // namespace nodedns::netif

#endif  // NODEDNS_LIB_NETIF_NODE_INTERFACE_H_
