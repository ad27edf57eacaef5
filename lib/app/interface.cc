#include "lib/app/interface.h"

#include <spdlog/spdlog.h>

#include <string>

namespace nodedns::app {

netif::InterfaceOptions InterfaceOptionsFor(const config::Config& c) {
  netif::InterfaceOptions o;
  o.name = c.interface_name;
  o.notrack = c.interface_notrack;
  o.addresses = c.interface_addresses;
  if (o.addresses.empty()) o.addresses = c.listen;
  for (SocketAddress& a : o.addresses) {
    for (const SocketAddress& l : c.listen) {
      if (l.HostString() == a.HostString()) a.set_port(l.port());  // the NOTRACK rules' port
    }
  }
  return o;
}

absl::StatusOr<std::unique_ptr<netif::NodeInterface>> SetUpInterface(const config::Config& c) {
  netif::InterfaceOptions o = InterfaceOptionsFor(c);
  auto ni = netif::NodeInterface::Setup(o);
  if (!ni.ok()) return absl::Status(ni.status().code(), "--setup-interface: " + std::string(ni.status().message()));
  std::string addrs;
  for (const SocketAddress& a : o.addresses) addrs += " " + a.HostString();
  spdlog::info("interface {} ({}) {} with{}{}", o.name, (*ni)->kind(), (*ni)->adopted() ? "adopted" : "created", addrs,
               o.notrack ? "; NOTRACK rules in nftables table inet nodedns" : "");
  return ni;
}

void TearDownInterface(netif::NodeInterface& ni, const config::Config& c, const char* left_to) {
  if (left_to != nullptr) {
    spdlog::info("interface {}: left to the {}", c.interface_name, left_to);
  } else if (auto st = ni.Teardown(); st.ok()) {
    spdlog::info("interface {} and its rules removed", c.interface_name);
  } else {
    spdlog::error("interface {}: {}", c.interface_name, std::string(st.message()));
  }
}

}  // namespace nodedns::app
