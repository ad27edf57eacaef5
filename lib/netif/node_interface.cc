#include "lib/netif/node_interface.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lib/common/errno_status.h"

namespace nodedns::netif {
namespace {

// One rtnetlink request: a header, a fixed part and attributes (nested ones
// through Begin/End), sent with NLM_F_ACK.
class Request {
 public:
  Request(uint16_t type, uint16_t flags) {
    buf_.resize(NLMSG_HDRLEN);
    auto* h = header();
    h->nlmsg_type = type;
    h->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
  }
  template <typename T>
  void Fixed(const T& t) {
    Append(&t, sizeof(t));
  }
  void Attr(uint16_t type, const void* data, size_t len) {
    rtattr a{static_cast<unsigned short>(RTA_LENGTH(len)), type};
    Append(&a, sizeof(a));
    Append(data, len);
  }
  void Attr(uint16_t type, const std::string& s) { Attr(type, s.c_str(), s.size() + 1); }
  size_t Begin(uint16_t type) {
    size_t at = buf_.size();
    rtattr a{RTA_LENGTH(0), type};
    Append(&a, sizeof(a));
    return at;
  }
  void End(size_t at) { reinterpret_cast<rtattr*>(buf_.data() + at)->rta_len = static_cast<unsigned short>(buf_.size() - at); }
  std::vector<char>& Finish(uint32_t seq) {
    header()->nlmsg_len = static_cast<uint32_t>(buf_.size());
    header()->nlmsg_seq = seq;
    return buf_;
  }

 private:
  nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
  void Append(const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    buf_.insert(buf_.end(), c, c + n);
    buf_.resize(NLMSG_ALIGN(buf_.size()));
  }
  std::vector<char> buf_;
};

class Netlink {
 public:
  ~Netlink() {
    if (fd_ >= 0) close(fd_);
  }
  absl::Status Open() {
    fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd_ < 0) return ErrnoStatus(errno, "netlink socket");
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return absl::OkStatus();
  }
  // Sends and waits for the ACK; returns the kernel's errno as a Status. A
  // reply message (for RTM_GET*) goes to *reply.
  absl::Status Call(Request& r, const std::string& what, std::vector<char>* reply = nullptr) {
    std::vector<char>& msg = r.Finish(++seq_);
    if (send(fd_, msg.data(), msg.size(), 0) < 0) return ErrnoStatus(errno, what);
    char buf[16384];
    for (;;) {
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n < 0) return ErrnoStatus(errno, what + ": no answer from the kernel");
      for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, static_cast<unsigned>(n)); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_seq != seq_) continue;
        if (h->nlmsg_type == NLMSG_ERROR) {
          int err = -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(h))->error;
          return err == 0 ? absl::OkStatus() : ErrnoStatus(err, what);
        }
        if (reply) reply->assign(reinterpret_cast<char*>(h), reinterpret_cast<char*>(h) + h->nlmsg_len);
      }
    }
  }

 private:
  int fd_ = -1;
  uint32_t seq_ = 0;
};

struct LinkInfo {
  int index = 0;
  std::string kind;
  std::string alias;
};

// Walks the attributes of an RTM_NEWLINK reply.
LinkInfo ParseLink(const std::vector<char>& msg) {
  LinkInfo info;
  auto* h = reinterpret_cast<const nlmsghdr*>(msg.data());
  auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
  info.index = ifi->ifi_index;
  int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(ifinfomsg)));
  for (auto* a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type == IFLA_IFALIAS) {
      info.alias.assign(static_cast<const char*>(RTA_DATA(a)), strnlen(static_cast<const char*>(RTA_DATA(a)), RTA_PAYLOAD(a)));
    } else if (a->rta_type == IFLA_LINKINFO) {
      int inner = static_cast<int>(RTA_PAYLOAD(a));
      for (auto* b = static_cast<const rtattr*>(RTA_DATA(a)); RTA_OK(b, inner); b = RTA_NEXT(b, inner)) {
        if (b->rta_type == IFLA_INFO_KIND) {
          info.kind.assign(static_cast<const char*>(RTA_DATA(b)), strnlen(static_cast<const char*>(RTA_DATA(b)), RTA_PAYLOAD(b)));
        }
      }
    }
  }
  return info;
}

absl::StatusOr<LinkInfo> GetLink(Netlink& nl, const std::string& name) {
  Request r(RTM_GETLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  r.Fixed(ifi);
  r.Attr(IFLA_IFNAME, name);
  std::vector<char> reply;
  if (auto st = nl.Call(r, "get link " + name, &reply); !st.ok()) return st;
  if (reply.empty()) return absl::NotFoundError("no link " + name);
  return ParseLink(reply);
}

absl::Status CreateLink(Netlink& nl, const std::string& name, const std::string& kind) {
  Request r(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  r.Fixed(ifi);
  r.Attr(IFLA_IFNAME, name);
  size_t info = r.Begin(IFLA_LINKINFO);
  r.Attr(IFLA_INFO_KIND, kind.data(), kind.size());
  r.End(info);
  return nl.Call(r, "create " + kind + " interface " + name);
}

absl::Status ConfigureLink(Netlink& nl, int index, const std::string& name) {
  Request r(RTM_NEWLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  r.Fixed(ifi);
  r.Attr(IFLA_IFALIAS, kAlias, sizeof(kAlias) - 1);
  return nl.Call(r, "bring up " + name);
}

absl::Status AddAddress(Netlink& nl, int index, const SocketAddress& a) {
  // NLM_F_REPLACE: an address that is already there (adoption) is fine.
  Request r(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
  ifaddrmsg ifa{};
  bool v6 = a.family() == AF_INET6;
  ifa.ifa_family = static_cast<unsigned char>(a.family());
  ifa.ifa_prefixlen = v6 ? 128 : 32;
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  ifa.ifa_index = static_cast<unsigned>(index);
  ifa.ifa_flags = v6 ? IFA_F_NODAD : 0;  // usable at once, no duplicate detection wait
  r.Fixed(ifa);
  unsigned char bytes[16];
  size_t len = v6 ? 16 : 4;
  inet_pton(a.family(), a.HostString().c_str(), bytes);
  r.Attr(IFA_LOCAL, bytes, len);
  r.Attr(IFA_ADDRESS, bytes, len);
  return nl.Call(r, "add address " + a.HostString());
}

absl::Status DeleteLink(Netlink& nl, int index, const std::string& name) {
  Request r(RTM_DELLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  r.Fixed(ifi);
  return nl.Call(r, "delete interface " + name);
}

// Deletes nftables table `inet NAME` through nfnetlink, as `nft delete table`
// does, without starting nft: a fraction of a millisecond where fork and
// exec of nft take tens. This is the fail-open withdrawal's latency; queries
// in that window are refused. NotFound when there is no such table.
absl::Status DeleteNftTable(const std::string& name) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) return ErrnoStatus(errno, "nfnetlink socket");
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  // One batch: begin, the deletion (acknowledged), end.
  std::vector<char> batch;
  auto message = [&](uint16_t type, uint16_t flags, uint8_t family, uint16_t res_id, uint32_t seq) {
    Request r(type, 0);
    nfgenmsg g{family, NFNETLINK_V0, htons(res_id)};
    r.Fixed(g);
    if (type == ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELTABLE)) r.Attr(NFTA_TABLE_NAME, name);
    std::vector<char>& m = r.Finish(seq);
    reinterpret_cast<nlmsghdr*>(m.data())->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | flags);
    batch.insert(batch.end(), m.begin(), m.end());
  };
  message(NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES, 1);
  message((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELTABLE, NLM_F_ACK, NFPROTO_INET, 0, 2);
  message(NFNL_MSG_BATCH_END, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES, 3);
  absl::Status result = absl::InternalError("nfnetlink: no answer to delete table inet " + name);
  if (send(fd, batch.data(), batch.size(), 0) < 0) {
    result = ErrnoStatus(errno, "nfnetlink send");
  } else {
    char buf[8192];
    for (bool done = false; !done;) {
      ssize_t got = recv(fd, buf, sizeof(buf), 0);
      if (got < 0) {
        result = ErrnoStatus(errno, "nfnetlink: delete table inet " + name);
        break;
      }
      // The deletion's acknowledgement (seq 2), or an error about the batch
      // itself (EPERM without CAP_NET_ADMIN, a kernel without nf_tables):
      // either ends the wait.
      unsigned n = static_cast<unsigned>(got);
      for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type != NLMSG_ERROR) continue;
        int err = -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(h))->error;
        if (h->nlmsg_seq != 2 && err == 0) continue;
        result = err == 0 ? absl::OkStatus() : ErrnoStatus(err, "nfnetlink: delete table inet " + name);
        done = true;
        break;
      }
    }
  }
  close(fd);
  return result;
}

// Runs `nft -f -` with `script` on its standard input.
absl::Status RunNft(const std::string& nft, const std::string& script) {
  int in[2];
  if (pipe2(in, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe");
  pid_t pid = fork();
  if (pid < 0) return ErrnoStatus(errno, "fork");
  if (pid == 0) {
    dup2(in[0], 0);
    execlp(nft.c_str(), nft.c_str(), "-f", "-", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(in[0]);
  (void)!write(in[1], script.data(), script.size());
  close(in[1]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return absl::OkStatus();
  if (WIFEXITED(st) && WEXITSTATUS(st) == 127) return absl::NotFoundError("cannot run '" + nft + "' (package nftables)");
  return absl::InternalError("nft failed (exit " + std::to_string(WIFEXITED(st) ? WEXITSTATUS(st) : -1) + ") on:\n" + script);
}

std::string NotrackScript(const std::vector<SocketAddress>& addresses) {
  // Declaring the table first makes the delete succeed whether or not it
  // exists: the whole file is one atomic replacement.
  std::string rules_in, rules_out;
  for (const SocketAddress& a : addresses) {
    std::string fam = a.family() == AF_INET6 ? "ip6" : "ip";
    std::string port = std::to_string(a.port() ? a.port() : 53);
    for (const char* proto : {"udp", "tcp"}) {
      std::string to = " daddr " + a.HostString() + " " + proto + " dport " + port + " notrack\n";
      rules_in += "    " + fam + to;
      // Answers leaving, and queries made on this host (hostNetwork pods,
      // the node itself), which never pass prerouting: without this rule
      // kube-proxy's DNAT would send them past us to the service's pods.
      rules_out += "    " + fam + " saddr " + a.HostString() + " " + proto + " sport " + port + " notrack\n";
      rules_out += "    " + fam + to;
    }
  }
  return "table inet nodedns\ndelete table inet nodedns\ntable inet nodedns {\n"
         "  chain prerouting {\n    type filter hook prerouting priority raw; policy accept;\n" + rules_in +
         "  }\n  chain output {\n    type filter hook output priority raw; policy accept;\n" + rules_out + "  }\n}\n";
}

}  // namespace

absl::StatusOr<std::unique_ptr<NodeInterface>> NodeInterface::Setup(const InterfaceOptions& o) {
  if (o.name.empty() || o.name.size() >= IFNAMSIZ) return absl::InvalidArgumentError("interface name '" + o.name + "'");
  std::unique_ptr<NodeInterface> self(new NodeInterface(o));
  Netlink nl;
  if (auto st = nl.Open(); !st.ok()) return st;
  auto link = GetLink(nl, o.name);
  if (link.ok()) {
    if (link->alias != kAlias) {
      return absl::AlreadyExistsError("interface " + o.name + " exists and is not nodedns's (no alias '" + kAlias +
                                      "'); not touching it");
    }
    self->adopted_ = true;
    self->kind_ = link->kind;
  } else if (absl::IsNotFound(link.status())) {
    // ENODEV: create it. Kernels without the dummy driver get a bridge.
    absl::Status st = CreateLink(nl, o.name, "dummy");
    self->kind_ = "dummy";
    if (absl::IsUnimplemented(st)) {
      st = CreateLink(nl, o.name, "bridge");
      self->kind_ = "bridge";
    }
    if (!st.ok()) return st;
    link = GetLink(nl, o.name);
    if (!link.ok()) return link.status();
  } else {
    return link.status();
  }
  if (auto st = ConfigureLink(nl, link->index, o.name); !st.ok()) return st;
  for (const SocketAddress& a : o.addresses) {
    if (auto st = AddAddress(nl, link->index, a); !st.ok()) return st;
  }
  return self;
}

absl::Status NodeInterface::InstallRules() {
  if (!options_.notrack) return absl::OkStatus();
  return RunNft(options_.nft, NotrackScript(options_.addresses));
}

absl::Status NodeInterface::Teardown() { return Remove(options_, nullptr); }

absl::Status NodeInterface::Remove(const InterfaceOptions& o, bool* removed) {
  // The rules first: while they stand, queries to our addresses skip
  // conntrack and thereby kube-proxy's DNAT; with the address gone first
  // they would be routed nowhere.
  absl::Status rules = RemoveRules(o);
  absl::Status link = RemoveLink(o, removed);
  return rules.ok() ? link : rules;
}

absl::Status NodeInterface::RemoveRules(const InterfaceOptions& o) {
  if (!o.notrack) return absl::OkStatus();
  // nft where nfnetlink is refused (an older kernel, a filtered socket).
  absl::Status st = DeleteNftTable("nodedns");
  if (!st.ok() && !absl::IsNotFound(st)) st = RunNft(o.nft, "table inet nodedns\ndelete table inet nodedns\n");
  return absl::IsNotFound(st) ? absl::OkStatus() : st;
}

absl::Status NodeInterface::RemoveLink(const InterfaceOptions& o, bool* removed) {
  if (removed) *removed = false;
  Netlink nl;
  if (auto st = nl.Open(); !st.ok()) return st;
  auto link = GetLink(nl, o.name);
  if (!link.ok() || link->alias != kAlias) return absl::OkStatus();
  if (auto st = DeleteLink(nl, link->index, o.name); !st.ok()) return st;
  if (removed) *removed = true;
  return absl::OkStatus();
}

}  // namespace nodedns::netif
