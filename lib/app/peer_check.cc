#include "lib/app/peer_check.h"

#include <unistd.h>

#include <algorithm>
#include <string>

#include "lib/common/socket_table.h"
#include "lib/control/protocol.h"

namespace nodedns::app {
namespace {

const char* Name(SocketProtocol p) { return p == SocketProtocol::kUdp ? "udp" : "tcp"; }

// The listeners on `address` that this process does not hold.
std::vector<BoundSocket> Foreign(const std::vector<BoundSocket>& table, const SocketAddress& address,
                                 const absl::flat_hash_set<uint64_t>& ours) {
  std::vector<BoundSocket> out;
  for (const BoundSocket& s : ListenersFor(table, address)) {
    if (!ours.contains(s.inode)) out.push_back(s);
  }
  return out;
}

absl::flat_hash_set<uint64_t> OwnSockets() {
  auto own = SocketInodesOf("self");
  return own.ok() ? *own : absl::flat_hash_set<uint64_t>();
}

std::string Who(const BoundSocket& s) {
  std::vector<pid_t> pids = ProcessesHolding(s.inode);
  if (pids.empty()) return "a process of uid " + std::to_string(s.uid) + " we may not inspect";
  return DescribeProcess(pids.front());
}

}  // namespace

absl::Status RefuseTwins(const std::vector<SocketAddress>& dns, const std::vector<SocketAddress>& http) {
  absl::flat_hash_set<uint64_t> own = OwnSockets();
  for (SocketProtocol proto : {SocketProtocol::kUdp, SocketProtocol::kTcp}) {
    std::vector<SocketAddress> addresses = dns;
    if (proto == SocketProtocol::kTcp) addresses.insert(addresses.end(), http.begin(), http.end());
    addresses.erase(std::remove_if(addresses.begin(), addresses.end(), [](const SocketAddress& a) { return a.port() == 0; }),
                    addresses.end());
    if (addresses.empty()) continue;
    auto table = ReadSocketTable(proto);
    if (!table.ok()) continue;  // no /proc: the kernel's own bind rules are all there is
    for (const SocketAddress& a : addresses) {
      std::vector<BoundSocket> others = Foreign(*table, a, own);
      if (others.empty()) continue;
      bool is_http = proto == SocketProtocol::kTcp && std::find(http.begin(), http.end(), a) != http.end();
      return absl::FailedPreconditionError(
          std::string(is_http ? "HTTP endpoint " : "") + Name(proto) + " " + a.ToString() +
          " is already served by " + Who(others.front()) +
          "; refusing to share it (SO_REUSEPORT would split the traffic between the two). Stop the other one, "
          "or start this one with --takeover and the other's --control-socket to take over from it");
    }
  }
  return absl::OkStatus();
}

absl::Status VerifyStartingNodedns(const control::PeerCredentials& peer, int64_t protocol,
                                   std::string_view executable) {
  if (!peer.known) return absl::PermissionDeniedError("the requester's credentials are unknown");
  if (peer.uid != geteuid() && peer.uid != 0) {
    return absl::PermissionDeniedError("the requester runs as uid " + std::to_string(peer.uid) +
                                       ", not as this nodedns (uid " + std::to_string(geteuid()) + ")");
  }
  if (protocol != control::protocol::kHandoverProtocol) {
    return absl::PermissionDeniedError("the requester speaks handover protocol " + std::to_string(protocol) +
                                       ", this nodedns " + std::to_string(control::protocol::kHandoverProtocol));
  }
  // PID 0: the requester is in another PID namespace (another pod); its
  // executable is not ours to see.
  if (peer.pid != 0) {
    std::string exe = ExecutableName(std::to_string(peer.pid));
    if (!exe.empty() && exe != executable) {
      return absl::PermissionDeniedError(DescribeProcess(peer.pid) + " runs " + exe + ", not " +
                                         std::string(executable));
    }
  }
  return absl::OkStatus();
}

absl::Status VerifySuccessor(const control::PeerCredentials& peer, const control::ReleaseRequest& request,
                             const std::vector<SocketAddress>& ours, std::string_view executable) {
  if (auto st = VerifyStartingNodedns(peer, request.protocol, executable); !st.ok()) return st;
  auto key = [](const std::vector<SocketAddress>& v) {
    std::vector<std::string> out;
    for (const SocketAddress& a : v) out.push_back(a.ToString());
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  };
  if (key(request.addresses) != key(ours)) {
    std::string mine;
    for (const std::string& a : key(ours)) mine += " " + a;
    return absl::PermissionDeniedError("the requester does not serve this nodedns's addresses (" + mine.substr(1) +
                                       ")");
  }
  absl::flat_hash_set<uint64_t> own = OwnSockets();
  // The requester's sockets, if its descriptors are ours to read.
  std::optional<absl::flat_hash_set<uint64_t>> theirs;
  if (peer.pid != 0) {
    if (auto s = SocketInodesOf(std::to_string(peer.pid)); s.ok()) theirs = std::move(*s);
  }
  for (SocketProtocol proto : {SocketProtocol::kUdp, SocketProtocol::kTcp}) {
    auto table = ReadSocketTable(proto);
    if (!table.ok()) return absl::PermissionDeniedError("cannot verify the requester: " + table.status().ToString());
    for (const SocketAddress& a : ours) {
      bool found = false;
      for (const BoundSocket& s : Foreign(*table, a, own)) {
        if (s.uid == peer.uid && (!theirs || theirs->contains(s.inode))) found = true;
      }
      if (!found) {
        return absl::PermissionDeniedError(std::string("the requester does not serve ") + Name(proto) + " " +
                                           a.ToString() + " (no socket of its own is bound there)");
      }
    }
  }
  return absl::OkStatus();
}

bool OthersServe(const std::vector<SocketAddress>& ours) {
  auto table = ReadSocketTable(SocketProtocol::kUdp);
  if (!table.ok()) return true;  // cannot tell: assume the successor is there
  absl::flat_hash_set<uint64_t> own = OwnSockets();
  for (const SocketAddress& a : ours) {
    if (Foreign(*table, a, own).empty()) return false;
  }
  return true;
}

}  // namespace nodedns::app
