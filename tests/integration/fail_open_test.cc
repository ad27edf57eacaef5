// Fail open (`nodedns --supervise`, README "Fail open"), on a node the test
// builds from network namespaces:
//  - "node": nodedns in service-IP mode (the cluster DNS service IP
//    10.96.0.10 and 169.254.20.10 on nodedns0, NOTRACK rules), a fake
//    CoreDNS on 10.244.0.53:53, and kube-proxy's rule as an nftables DNAT
//    from 10.96.0.10:53 to it;
//  - "pod": a client behind a veth pair asking 10.96.0.10 at a steady rate,
//    two attempts per lookup as glibc's resolver makes them.
// nodedns's child is SIGKILLed, restarted by the supervisor, and SIGKILLed
// again: every lookup must be answered throughout (by the fake CoreDNS
// through the DNAT while nodedns is down, by nodedns after). The gap is
// measured and printed. Needs root and nft (skipped with a message otherwise).

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/dns/constants.h"
#include "tests/support/daemon_process.h"
#include "tests/support/dns_client.h"
#include "tests/support/endpoints.h"
#include "tests/support/fake_upstream.h"

namespace nodedns::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Clock = std::chrono::steady_clock;

constexpr char kServiceIp[] = "10.96.0.10";
constexpr char kCoreDnsIp[] = "10.244.0.53";
constexpr char kName[] = "kubernetes.default.svc.cluster.local";
constexpr char kLoggedName[] = "kubernetes.default.svc.cluster.local.";  // as the fake upstream counts it

// Runs `fn` on a thread inside network namespace `ns`: sockets it makes
// belong to that namespace for their whole life.
void InNetns(const std::string& ns, const std::function<void()>& fn) {
  std::thread t([&] {
    int fd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
      ADD_FAILURE() << "cannot enter network namespace " << ns;
      if (fd >= 0) close(fd);
      return;
    }
    close(fd);
    fn();
  });
  t.join();
}

// The supervisor's current child, from /proc; 0 when it has none.
pid_t ChildOf(pid_t parent) {
  std::ifstream in("/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) + "/children");
  pid_t child = 0;
  in >> child;
  return child;
}

struct Lookup {
  Clock::time_point sent;
  int attempts = 0;  // 1 or 2
  bool answered = false;
};

class FailOpenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "network namespaces and CAP_NET_ADMIN need root";
    std::string tag = std::to_string(getpid());
    node_ = "nodedns-fo-node-" + tag;
    pod_ = "nodedns-fo-pod-" + tag;
    std::string out;
    for (const std::string& ns : {node_, pod_}) {
      if (RunProgram({"ip", "netns", "add", ns}, &out) != 0) GTEST_SKIP() << "cannot create a network namespace: " << out;
      made_.push_back(ns);
    }
    if (RunProgram({"ip", "netns", "exec", node_, "true"}, &out) != 0) {
      GTEST_SKIP() << "a network namespace can be created but not entered here: " << out;
    }
    if (RunProgram({"ip", "netns", "exec", node_, "nft", "list", "tables"}, &out) != 0) {
      GTEST_SKIP() << "nft not usable here (package nftables): " << out;
    }
    // The node and its pod, joined by a veth pair as a CNI joins them.
    for (const auto& cmd : std::vector<std::vector<std::string>>{
             {"-n", node_, "link", "set", "lo", "up"},
             {"-n", pod_, "link", "set", "lo", "up"},
             {"-n", node_, "link", "add", "veth0", "type", "veth", "peer", "name", "eth0", "netns", pod_},
             {"-n", node_, "addr", "add", "10.1.0.1/24", "dev", "veth0"},
             {"-n", node_, "link", "set", "veth0", "up"},
             {"-n", pod_, "addr", "add", "10.1.0.2/24", "dev", "eth0"},
             {"-n", pod_, "link", "set", "eth0", "up"},
             {"-n", pod_, "route", "add", "default", "via", "10.1.0.1"},
             {"-n", node_, "route", "add", "default", "dev", "veth0"},
             {"-n", node_, "addr", "add", std::string(kCoreDnsIp) + "/32", "dev", "lo"}}) {
      std::vector<std::string> argv = {"ip"};
      argv.insert(argv.end(), cmd.begin(), cmd.end());
      ASSERT_EQ(RunProgram(argv, &out), 0) << out;
    }
    // kube-proxy (nftables mode, reduced to this one service).
    std::string dnat = std::string("ip daddr ") + kServiceIp + " meta l4proto { udp, tcp } th dport 53 dnat to " +
                       kCoreDnsIp + ":53\n";
    std::string rules = dir_.Write("kube-proxy.nft",
                                   "table ip kube-proxy {\n"
                                   "  chain prerouting {\n    type nat hook prerouting priority dstnat;\n    " +
                                       dnat +
                                       "  }\n  chain output {\n    type nat hook output priority -100;\n    " + dnat +
                                       "  }\n}\n");
    ASSERT_EQ(RunProgram({"ip", "netns", "exec", node_, "nft", "-f", rules}, &out), 0) << out;
    InNetns(node_, [&] { coredns_ = FakeUpstream::StartOn(kCoreDnsIp, 53); });
    ASSERT_NE(coredns_, nullptr);
    coredns_->set_ttl(300);
    coredns_->set_log_queries(true);
    config_ = dir_.Write("nodedns.toml", "[interface]\nsetup = true\nnotrack = true\n");
  }
  void TearDown() override {
    coredns_.reset();
    std::string out;
    for (const std::string& ns : made_) RunProgram({"ip", "netns", "del", ns}, &out);
  }

  std::unique_ptr<DaemonProcess> StartNodedns(std::vector<std::string> extra) {
    DaemonProcess::Options o;
    o.wrapper = {"ip", "netns", "exec", node_};
    o.listen_in_args = true;
    o.args = {"--config", config_, "--listen", "169.254.20.10:53", "--listen", std::string(kServiceIp) + ":53",
              "--upstream", coredns_->address(), "--control-socket", dir_.path() + "/control.sock"};
    o.args.insert(o.args.end(), extra.begin(), extra.end());
    return DaemonProcess::Start(o);
  }

  // The pod's client: a lookup every 10 ms until `stop`, each with two
  // attempts of 300 ms (glibc: attempts:2, the next at once on an ICMP error).
  void StartClient() {
    client_ = std::thread([this] {
      InNetns(pod_, [this] {
        for (int i = 0; i < 3000 && !stop_; ++i) {
          Lookup l;
          l.sent = Clock::now();
          for (l.attempts = 1; l.attempts <= 2; ++l.attempts) {
            auto answer = UdpExchange(kServiceIp, 53, MakeQuery(kName, dns::kTypeA), 300);
            if (answer && Parse(*answer).rcode() == 0 && !Parse(*answer).answers.empty()) {
              l.answered = true;
              break;
            }
          }
          {
            std::lock_guard<std::mutex> lock(mu_);
            lookups_.push_back(l);
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
      });
    });
  }
  void StopClient() {
    stop_ = true;
    if (client_.joinable()) client_.join();
  }
  size_t LookupCount() {
    std::lock_guard<std::mutex> lock(mu_);
    return lookups_.size();
  }
  // Waits until the client has made `n` more lookups.
  void LetClientRun(size_t n) {
    size_t until = LookupCount() + n;
    auto deadline = Clock::now() + std::chrono::seconds(30);
    while (LookupCount() < until && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }

  std::string node_, pod_;
  std::vector<std::string> made_;
  TempDir dir_;
  std::string config_;
  std::unique_ptr<FakeUpstream> coredns_;
  std::thread client_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<Lookup> lookups_;
};

TEST_F(FailOpenTest, KilledDaemonCostsTheClientsNoLookup) {
  auto d = StartNodedns({"--supervise"});
  ASSERT_NE(d->port(), 0) << d->log();
  StartClient();
  LetClientRun(50);
  // Served by nodedns: the fake CoreDNS saw the first miss only.
  int before = coredns_->queries_for(kLoggedName);
  LetClientRun(50);
  EXPECT_EQ(coredns_->queries_for(kLoggedName), before) << "nodedns did not answer the service IP itself";

  std::vector<Clock::time_point> kills;
  for (int round = 0; round < 2; ++round) {
    pid_t child = ChildOf(d->pid());
    ASSERT_GT(child, 0);
    std::filesystem::remove(d->ready_file());
    int at_kill = coredns_->queries_for(kLoggedName);
    kills.push_back(Clock::now());
    ASSERT_EQ(kill(child, SIGKILL), 0);
    // Until the new child serves, the lookups reach the fake CoreDNS
    // through kube-proxy's DNAT. The restart can come before the client's
    // lookup in flight at the kill has timed out (300 ms), so that no new
    // lookup is made while nodedns is down: once this round's withdrawal is
    // logged, the supervisor is held until a lookup has reached CoreDNS.
    auto withdrawals = [&d] {
      std::string log = d->log();
      int n = 0;
      for (size_t at = log.find("fail open: NOTRACK"); at != std::string::npos; at = log.find("fail open: NOTRACK", at + 1)) ++n;
      return n;
    };
    auto hold_until = Clock::now() + std::chrono::seconds(10);
    while (withdrawals() <= round && Clock::now() < hold_until) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ASSERT_GT(withdrawals(), round) << "no withdrawal logged:\n" << d->log();
    ASSERT_EQ(kill(d->pid(), SIGSTOP), 0);
    while (coredns_->queries_for(kLoggedName) == at_kill && Clock::now() < hold_until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ASSERT_EQ(kill(d->pid(), SIGCONT), 0);
    auto deadline = Clock::now() + std::chrono::seconds(20);
    while (!std::filesystem::exists(d->ready_file()) && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ASSERT_TRUE(std::filesystem::exists(d->ready_file())) << "not restarted:\n" << d->log();
    int during = coredns_->queries_for(kLoggedName) - at_kill;
    EXPECT_GE(during, 1) << "no lookup reached CoreDNS while nodedns was down: not failed open\n" << d->log();
    std::cout << "round " << round + 1 << ": " << during << " lookups answered by CoreDNS while nodedns was down\n";
    LetClientRun(30);
    int served = coredns_->queries_for(kLoggedName);
    LetClientRun(50);
    EXPECT_LE(coredns_->queries_for(kLoggedName) - served, 0) << "the restarted nodedns did not take the service IP back";
  }
  StopClient();

  // Every lookup answered; the gap is the longest wait for an answer around a kill.
  std::vector<Lookup> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    all = lookups_;
  }
  int unanswered = 0, retried = 0;
  Clock::duration gap{};
  Clock::time_point last_answer = all.front().sent;
  for (const Lookup& l : all) {
    if (!l.answered) ++unanswered;
    if (l.attempts > 1) ++retried;
    if (l.answered && l.attempts == 1) {
      gap = std::max(gap, l.sent - last_answer);
      last_answer = l.sent;
    }
  }
  std::cout << all.size() << " lookups, " << unanswered << " unanswered, " << retried
            << " answered at the second attempt; longest gap between first-attempt answers "
            << std::chrono::duration_cast<std::chrono::milliseconds>(gap).count() << " ms\n";
  // The supervisor's own measure: from the death seen to rules and interface gone.
  std::istringstream log(d->log());
  for (std::string line; std::getline(log, line);) {
    if (size_t at = line.find("fail open: "); at != std::string::npos) std::cout << line.substr(at) << "\n";
  }
  // At most the lookups in flight at each kill.
  EXPECT_LE(unanswered, static_cast<int>(kills.size()));
  EXPECT_THAT(d->log(), HasSubstr("fail open: NOTRACK rules removed in"));
  EXPECT_THAT(d->log(), HasSubstr("interface nodedns0 withdrawn in"));

  std::string stats;
  ASSERT_EQ(d->Dnsctl({"stats", "--json"}, &stats), 0) << stats;
  EXPECT_THAT(stats, HasSubstr("\"restarts\": 2"));
  EXPECT_THAT(stats, HasSubstr("\"fail_opens\": 2"));
  EXPECT_THAT(stats, HasSubstr("killed by signal 9"));
  std::string human;
  ASSERT_EQ(d->Dnsctl({"stats"}, &human), 0) << human;
  EXPECT_THAT(human, HasSubstr("supervisor  2 restarts, 2 fail-open withdrawals (last: nodedns killed by signal 9"));
  // The restarted child's metrics address, from its ready file.
  std::string metrics_address, line, metrics;
  for (std::ifstream in(d->ready_file()); std::getline(in, line);) {
    if (line.rfind("metrics ", 0) == 0) metrics_address = line.substr(8);
  }
  InNetns(node_, [&] { metrics = HttpGet(metrics_address, "/metrics"); });
  EXPECT_THAT(metrics, HasSubstr("nodedns_supervisor_fail_opens_total 2"));

  // A stop is not a death: the child removes what it owns, the supervisor
  // exits with it and withdraws nothing twice.
  EXPECT_EQ(d->Stop(), 0) << d->log();
  std::string out;
  EXPECT_NE(RunProgram({"ip", "-n", node_, "link", "show", "nodedns0"}, &out), 0);
  EXPECT_THAT(d->log(), HasSubstr("supervisor: nodedns exited with status 0 after signal 15; stopping"));
}

TEST_F(FailOpenTest, AStopWhoseChildDiesUncleanStillWithdraws) {
  // The supervisor is told to stop, and its child dies without its own
  // teardown (killed while starting, before its handlers; a crash while
  // draining). Made deterministic: the supervisor is paused, the child
  // SIGKILLed, then SIGTERM (delivered before SIGCHLD) and SIGCONT.
  auto d = StartNodedns({"--supervise"});
  ASSERT_NE(d->port(), 0) << d->log();
  pid_t child = ChildOf(d->pid());
  ASSERT_GT(child, 0);
  ASSERT_EQ(kill(d->pid(), SIGSTOP), 0);
  ASSERT_EQ(kill(child, SIGKILL), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the child is gone
  kill(d->pid(), SIGTERM);
  kill(d->pid(), SIGCONT);
  d->Stop(0);
  EXPECT_THAT(d->log(), HasSubstr("killed by signal 9 (Killed) after signal 15; stopping"));
  EXPECT_THAT(d->log(), HasSubstr("supervisor: fail open: NOTRACK rules removed in"));
  std::string out;
  EXPECT_NE(RunProgram({"ip", "-n", node_, "link", "show", "nodedns0"}, &out), 0) << "interface left behind";
  RunProgram({"ip", "netns", "exec", node_, "nft", "list", "tables"}, &out);
  EXPECT_THAT(out, Not(HasSubstr("nodedns")));
}

TEST_F(FailOpenTest, ZeroGapTakeoverDoesNotFailOpen) {
  auto old = StartNodedns({"--supervise"});
  ASSERT_NE(old->port(), 0) << old->log();
  auto next = StartNodedns({"--supervise", "--takeover"});
  ASSERT_NE(next->port(), 0) << next->log();
  // The old daemon hands over and exits 0; its supervisor with it.
  old->Stop();
  EXPECT_THAT(old->log(), HasSubstr("handover"));
  EXPECT_THAT(old->log(), Not(HasSubstr("fail open")));
  std::string out;
  EXPECT_EQ(RunProgram({"ip", "-n", node_, "link", "show", "nodedns0"}, &out), 0) << "interface withdrawn under the successor";
  StartClient();
  LetClientRun(30);
  int served = coredns_->queries_for(kLoggedName);
  LetClientRun(30);
  StopClient();
  EXPECT_EQ(coredns_->queries_for(kLoggedName), served) << "the successor does not hold the service IP";
  for (const Lookup& l : lookups_) EXPECT_TRUE(l.answered);
  EXPECT_EQ(next->Stop(), 0) << next->log();
}

TEST_F(FailOpenTest, WithdrawLeavesALiveDaemonAloneAndClearsWhatADeadOneLeft) {
  auto d = StartNodedns({});
  ASSERT_NE(d->port(), 0) << d->log();
  auto withdraw = [&] {
    std::string out;
    int rc = RunProgram({"ip", "netns", "exec", node_, NodednsBinary(), "--withdraw", "--config", config_, "--listen",
                         "169.254.20.10:53", "--listen", std::string(kServiceIp) + ":53", "--upstream",
                         coredns_->address(), "--control-socket", dir_.path() + "/control.sock"},
                        &out);
    EXPECT_EQ(rc, 0) << out;
    return out;
  };
  EXPECT_THAT(withdraw(), HasSubstr("left to the nodedns answering on"));
  std::string out;
  EXPECT_EQ(RunProgram({"ip", "-n", node_, "link", "show", "nodedns0"}, &out), 0);
  d->Stop(SIGKILL);
  std::string said = withdraw();
  EXPECT_THAT(said, HasSubstr("NOTRACK rules removed in"));
  EXPECT_THAT(said, HasSubstr("interface nodedns0 withdrawn in"));
  EXPECT_NE(RunProgram({"ip", "-n", node_, "link", "show", "nodedns0"}, &out), 0);
  RunProgram({"ip", "netns", "exec", node_, "nft", "list", "tables"}, &out);
  EXPECT_THAT(out, Not(HasSubstr("nodedns")));
  // Lookups take kube-proxy's path again.
  std::optional<std::vector<uint8_t>> answer;
  InNetns(pod_, [&] { answer = UdpExchange(kServiceIp, 53, MakeQuery(kName, dns::kTypeA), 2000); });
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(Parse(*answer).rcode(), 0);
  EXPECT_THAT(withdraw(), HasSubstr("was not there"));  // idempotent
}

}  // namespace
}  // namespace nodedns::testing
