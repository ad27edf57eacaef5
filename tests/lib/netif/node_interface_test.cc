#include "lib/netif/node_interface.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nodedns::netif {
namespace {

using ::testing::HasSubstr;

// The name is checked before any netlink request: safe on the host.
TEST(NodeInterfaceTest, RefusesUnusableNamesBeforeTouchingAnything) {
  for (const std::string& name : {std::string(), std::string(IFNAMSIZ, 'x'), std::string(40, 'y')}) {
    InterfaceOptions o;
    o.name = name;
    auto ni = NodeInterface::Setup(o);
    ASSERT_FALSE(ni.ok()) << name;
    EXPECT_TRUE(absl::IsInvalidArgument(ni.status())) << ni.status();
    EXPECT_THAT(ni.status().message(), HasSubstr("interface name '" + name + "'"));
  }
}

// What the child process reports: failures, one per line, or a reason to skip.
struct ChildReport {
  std::string skip;
  std::vector<std::string> failures;
};

// Runs `body` in a child process in a network namespace of its own (the
// host's interfaces are never touched). The body records failures with
// `fail`. Skipped when namespaces cannot be created here.
ChildReport InOwnNetworkNamespace(const std::function<void(const std::function<void(std::string)>& fail)>& body) {
  ChildReport report;
  int out[2];
  if (pipe(out) != 0) {
    report.failures.push_back("pipe failed");
    return report;
  }
  fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    report.failures.push_back("fork failed");
    return report;
  }
  if (pid == 0) {
    close(out[0]);
    auto say = [&](const std::string& line) {
      std::string l = line + "\n";
      (void)!write(out[1], l.data(), l.size());
    };
    // The child is single-threaded, so a user namespace is possible too.
    if (unshare(CLONE_NEWNET) != 0 && unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) {
      say(std::string("SKIP: cannot create a network namespace: ") + std::strerror(errno));
      _exit(0);
    }
    // RunNft writes to a child that may already have exited; the daemon
    // ignores SIGPIPE (daemon/nodedns_main.cc), and so must its caller here.
    signal(SIGPIPE, SIG_IGN);
    body(say);
    _exit(0);
  }
  close(out[1]);
  std::string all;
  char buf[4096];
  for (ssize_t n; (n = read(out[0], buf, sizeof(buf))) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    all.append(buf, static_cast<size_t>(n));
  }
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    report.failures.push_back("the child process died (status " + std::to_string(status) + ")");
  }
  size_t pos = 0;
  while (pos < all.size()) {
    size_t nl = all.find('\n', pos);
    std::string line = all.substr(pos, nl - pos);
    pos = nl == std::string::npos ? all.size() : nl + 1;
    if (line.rfind("SKIP: ", 0) == 0) {
      report.skip = line.substr(6);
    } else {
      report.failures.push_back(line);
    }
  }
  return report;
}

void Check(const ChildReport& r) {
  if (!r.skip.empty()) GTEST_SKIP() << r.skip;
  for (const std::string& f : r.failures) ADD_FAILURE() << f;
}

// The addresses of interface `name` in this namespace, as text.
std::vector<std::string> AddressesOf(const std::string& name, bool* up) {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* a = list; a; a = a->ifa_next) {
    if (a->ifa_name == nullptr || name != a->ifa_name) continue;
    if (up) *up = a->ifa_flags & IFF_UP;
    if (a->ifa_addr == nullptr) continue;
    char buf[INET6_ADDRSTRLEN] = {};
    if (a->ifa_addr->sa_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, buf, sizeof(buf));
      out.push_back(buf);
    } else if (a->ifa_addr->sa_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(a->ifa_addr)->sin6_addr, buf, sizeof(buf));
      out.push_back(buf);
    }
  }
  freeifaddrs(list);
  return out;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  for (const std::string& x : v) {
    if (x == s) return true;
  }
  return false;
}

bool HaveIpv6() { return access("/proc/net/if_inet6", F_OK) == 0; }

TEST(NodeInterfaceTest, CreatesAdoptsAndRemovesItsInterface) {
  Check(InOwnNetworkNamespace([](const auto& fail) {
    InterfaceOptions o;
    o.name = "nodedns0";
    o.addresses = {*SocketAddress::Parse("169.254.20.10:53")};
    bool v6 = HaveIpv6();
    if (v6) o.addresses.push_back(*SocketAddress::Parse("[fd00::10]:53"));
    auto ni = NodeInterface::Setup(o);
    if (!ni.ok()) return fail("Setup: " + ni.status().ToString());
    if ((*ni)->adopted()) fail("a new interface reported as adopted");
    if ((*ni)->kind() != "dummy" && (*ni)->kind() != "bridge") fail("kind '" + (*ni)->kind() + "'");
    if (if_nametoindex("nodedns0") == 0) fail("no interface nodedns0 after Setup");
    bool up = false;
    auto addrs = AddressesOf("nodedns0", &up);
    if (!up) fail("nodedns0 is not up");
    if (!Contains(addrs, "169.254.20.10")) fail("169.254.20.10 missing");
    if (v6 && !Contains(addrs, "fd00::10")) fail("fd00::10 missing");
    // What it is for: the address can be bound.
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(5353);
    inet_pton(AF_INET, "169.254.20.10", &sin.sin_addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0) fail("cannot bind 169.254.20.10");
    close(fd);

    // A second daemon (a handover, or a restart after a crash) adopts it.
    auto again = NodeInterface::Setup(o);
    if (!again.ok()) return fail("second Setup: " + again.status().ToString());
    if (!(*again)->adopted()) fail("an existing nodedns interface was not adopted");
    if ((*again)->kind() != (*ni)->kind()) fail("adopted kind '" + (*again)->kind() + "'");

    if (auto st = (*again)->Teardown(); !st.ok()) fail("Teardown: " + st.ToString());
    if (if_nametoindex("nodedns0") != 0) fail("nodedns0 still there after Teardown");
    // A second teardown finds nothing to remove.
    if (auto st = (*ni)->Teardown(); !st.ok()) fail("second Teardown: " + st.ToString());
  }));
}

TEST(NodeInterfaceTest, NeverTouchesSomeoneElsesInterface) {
  Check(InOwnNetworkNamespace([](const auto& fail) {
    if (std::system("ip link add foreign0 type bridge >/dev/null 2>&1") != 0) {
      // Reported as a failure only if iproute2 is there but refused.
      if (std::system("ip -V >/dev/null 2>&1") == 0) fail("ip link add foreign0 failed");
      return;
    }
    InterfaceOptions o;
    o.name = "foreign0";
    o.addresses = {*SocketAddress::Parse("169.254.20.10:53")};
    auto ni = NodeInterface::Setup(o);
    if (ni.ok()) return fail("Setup took over an interface without our alias");
    if (!absl::IsAlreadyExists(ni.status())) fail("Setup: " + ni.status().ToString());
    if (ni.status().message().find("not nodedns's") == std::string::npos) fail("message: " + ni.status().ToString());
    if (if_nametoindex("foreign0") == 0) fail("foreign0 was removed");
    if (Contains(AddressesOf("foreign0", nullptr), "169.254.20.10")) fail("an address was added to foreign0");

    // Ours, then replaced by someone else's of the same name: Teardown
    // leaves the newcomer alone.
    o.name = "nodedns1";
    auto ours = NodeInterface::Setup(o);
    if (!ours.ok()) return fail("Setup nodedns1: " + ours.status().ToString());
    if (std::system("ip link del nodedns1 && ip link add nodedns1 type bridge") != 0) {
      return fail("could not replace nodedns1");
    }
    (void)(*ours)->Teardown();
    if (if_nametoindex("nodedns1") == 0) fail("Teardown removed an interface that is not ours");
  }));
}

TEST(NodeInterfaceTest, NotrackRulesComeAndGoWithTheInterface) {
  Check(InOwnNetworkNamespace([](const auto& fail) {
    InterfaceOptions o;
    o.name = "nodedns0";
    o.addresses = {*SocketAddress::Parse("169.254.20.10:5353")};
    o.notrack = true;
    o.nft = "/nonexistent/nft";
    // The interface comes first; the rules once the daemon is bound.
    auto early = NodeInterface::Setup(o);
    if (!early.ok()) return fail("Setup: " + early.status().ToString());
    absl::Status missing = (*early)->InstallRules();
    if (!absl::IsNotFound(missing) || missing.message().find("cannot run '/nonexistent/nft'") == std::string::npos) {
      fail("without nft: " + missing.ToString());
    }
    if (std::system("nft list tables >/dev/null 2>&1") != 0) return;  // no usable nft here
    o.nft = "nft";
    auto ni = NodeInterface::Setup(o);
    if (!ni.ok()) return fail("Setup with notrack: " + ni.status().ToString());
    if (std::system("nft list table inet nodedns >/dev/null 2>&1") == 0) fail("rules before InstallRules");
    if (auto st = (*ni)->InstallRules(); !st.ok()) return fail("InstallRules: " + st.ToString());
    FILE* p = popen("nft list table inet nodedns 2>&1", "r");
    std::string rules;
    char buf[512];
    while (p && fgets(buf, sizeof(buf), p)) rules += buf;
    if (p) pclose(p);
    for (const char* want : {"ip daddr 169.254.20.10 udp dport 5353 notrack",
                             "ip saddr 169.254.20.10 tcp sport 5353 notrack"}) {
      if (rules.find(want) == std::string::npos) fail(std::string("rule missing: ") + want + "\n" + rules);
    }
    // Queries made on the node itself (hostNetwork pods) skip conntrack too.
    size_t output = rules.find("chain output");
    if (output == std::string::npos || rules.find("ip daddr 169.254.20.10 udp dport 5353 notrack", output) == std::string::npos) {
      fail("no rule for queries sent from this host:\n" + rules);
    }
    if (auto st = (*ni)->Teardown(); !st.ok()) fail("Teardown: " + st.ToString());
    if (std::system("nft list table inet nodedns >/dev/null 2>&1") == 0) fail("table left after Teardown");
  }));
}

}  // namespace
}  // namespace nodedns::netif
