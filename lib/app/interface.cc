#include "lib/app/interface.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_format.h"
#include "lib/app/control_socket.h"
#include "lib/common/clock.h"
#include "lib/control/unix_socket.h"

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
  spdlog::info("interface {} ({}) {} with{}", o.name, (*ni)->kind(), (*ni)->adopted() ? "adopted" : "created", addrs);
  return ni;
}

absl::Status InstallInterfaceRules(netif::NodeInterface& ni, const config::Config& c) {
  if (!c.interface_notrack) return absl::OkStatus();
  if (auto st = ni.InstallRules(); !st.ok()) {
    return absl::Status(st.code(), "--setup-interface: " + std::string(st.message()));
  }
  spdlog::info("interface {}: NOTRACK rules in nftables table inet nodedns", c.interface_name);
  return absl::OkStatus();
}

absl::StatusOr<std::string> WithdrawInterface(const config::Config& c) {
  if (!c.interface_setup) return std::string("nothing to withdraw: no [interface] setup");
  // A nodedns answering on the control socket serves on the interface (a
  // successor that took over, a predecessor still draining): it is theirs.
  if (!c.control_socket.empty()) {
    if (auto fd = control::ConnectUnix(c.control_socket); fd.ok()) {
      close(*fd);
      return "interface " + c.interface_name + " left to the nodedns answering on " + c.control_socket;
    }
  }
  // Timed apart: the rules are what clients wait for (without them the
  // service IP takes kube-proxy's DNAT again); the interface goes after.
  netif::InterfaceOptions o = InterfaceOptionsFor(c);
  absl::Time start = SystemSteadyClock::Get()->Now();
  if (auto st = netif::NodeInterface::RemoveRules(o); !st.ok()) return st;
  absl::Time rules = SystemSteadyClock::Get()->Now();
  bool removed = false;
  if (auto st = netif::NodeInterface::RemoveLink(o, &removed); !st.ok()) return st;
  absl::Time link = SystemSteadyClock::Get()->Now();
  std::string out;
  if (c.interface_notrack) out = absl::StrFormat("NOTRACK rules removed in %.1f ms, ", absl::ToDoubleMilliseconds(rules - start));
  return out + "interface " + c.interface_name +
         (removed ? absl::StrFormat(" withdrawn in %.1f ms", absl::ToDoubleMilliseconds(link - rules)) : " was not there");
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
