#ifndef NODEDNS_LIB_APP_INTERFACE_H_
#define NODEDNS_LIB_APP_INTERFACE_H_

// The node-local interface as the configuration describes it ([interface],
// --setup-interface): which addresses, with which ports for the NOTRACK
// rules, set up at start and withdrawn at a stop that no successor or
// predecessor takes over.

#include <memory>

#include "absl/status/statusor.h"
#include "lib/config/config.h"
#include "lib/netif/node_interface.h"

namespace nodedns::app {

// The interface's options: [interface] addresses, or the listen addresses
// when none are given; each address takes the port of the listen address
// with the same host (the port the NOTRACK rules match).
netif::InterfaceOptions InterfaceOptionsFor(const config::Config& c);

// Sets the interface up (or adopts it), and logs what it did.
absl::StatusOr<std::unique_ptr<netif::NodeInterface>> SetUpInterface(const config::Config& c);

// At a stop: withdraws the interface and its rules, unless `left_to` names
// who keeps serving on it ("successor", "predecessor"; nullptr: nobody).
void TearDownInterface(netif::NodeInterface& ni, const config::Config& c, const char* left_to);

}  // namespace nodedns::app

#endif  // NODEDNS_LIB_APP_INTERFACE_H_
