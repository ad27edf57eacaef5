#ifndef NODEDNS_LIB_APP_INTERFACE_H_
#define NODEDNS_LIB_APP_INTERFACE_H_

// The node-local interface as the configuration describes it ([interface],
// --setup-interface): which addresses, with which ports for the NOTRACK
// rules, set up at start and withdrawn at a stop that no successor or
// predecessor takes over, or after a death (fail open).

#include <memory>

#include "absl/status/statusor.h"
#include "lib/config/config.h"
#include "lib/netif/node_interface.h"

namespace nodedns::app {

// The interface's options: [interface] addresses, or the listen addresses
// when none are given; each address takes the port of the listen address
// with the same host (the port the NOTRACK rules match).
netif::InterfaceOptions InterfaceOptionsFor(const config::Config& c);

// Sets the interface up (or adopts it) with its addresses, and logs what it
// did. Then, once the listeners are bound, InstallInterfaceRules adds the
// NOTRACK rules (with interface.notrack).
absl::StatusOr<std::unique_ptr<netif::NodeInterface>> SetUpInterface(const config::Config& c);
absl::Status InstallInterfaceRules(netif::NodeInterface& ni, const config::Config& c);

// Fail open (the supervisor after its daemon died, --withdraw from systemd's
// ExecStopPost): removes the NOTRACK rules and the interface, if it is ours,
// so that queries to the addresses it held take kube-proxy's path again;
// unless a nodedns answers on the control socket, which then serves on them.
// Returns what it did, for the log.
absl::StatusOr<std::string> WithdrawInterface(const config::Config& c);

// At a stop: withdraws the interface and its rules, unless `left_to` names
// who keeps serving on it ("successor", "predecessor"; nullptr: nobody).
void TearDownInterface(netif::NodeInterface& ni, const config::Config& c, const char* left_to);

}  // namespace nodedns::app

#endif  // NODEDNS_LIB_APP_INTERFACE_H_
