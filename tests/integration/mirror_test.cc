// Mirrored zones ([[zone]] mirror = true) in the real daemon, transferring
// from Debian's nsd (started by the test on a free loopback port, serving a
// cluster-like zone by AXFR): the transfer; no transfer while the serial is
// unchanged; a new transfer when it changes; NXDOMAIN still asked upstream;
// an outage in which names this node never asked resolve stale with EDE 3;
// a transfer cut short (a proxy in front of nsd closes mid-stream) and a
// zone over the record cap, neither of which changes what is cached.
// Knobs set here: [mirror] check_interval_s = 1 and min_transfer_interval_s
// = 0 (seconds instead of minutes), max_records in the cap test. Skipped
// when nsd is not installed (scripts/deps.sh test installs it).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/daemon_process.h"
#include "tests/support/dns_client.h"

namespace nodedns::testing {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// nsd in the foreground (-d), its files in `dir`.
class Nsd {
 public:
  Nsd(const std::string& dir, uint16_t port) : dir_(dir), port_(port) {}
  ~Nsd() { Stop(); }
  void WriteZone(uint32_t serial, int services, const std::string& extra = "") {
    std::ostringstream z;
    z << "$ORIGIN cluster.local.\n$TTL 5\n@ IN SOA ns.dns.cluster.local. hostmaster.cluster.local. " << serial
      << " 7200 1800 86400 5\n";
    for (int i = 1; i <= services; ++i) {
      z << "svc" << i << ".default.svc IN A 10.96." << i / 250 << "." << i % 250 + 1 << "\n";
      z << "_http._tcp.svc" << i << ".default.svc IN SRV 0 100 80 svc" << i << ".default.svc\n";
    }
    z << extra;
    std::string path = dir_ + "/cluster.local.zone";
    std::ofstream(path) << z.str();
    // nsd reloads a zone file on SIGHUP only if its mtime moved.
    auto t = std::filesystem::last_write_time(path) + std::chrono::seconds(++generation_);
    std::filesystem::last_write_time(path, t);
  }
  bool Start() {
    std::ofstream(dir_ + "/nsd.conf") << "server:\n  ip-address: 127.0.0.1\n  port: " << port_
                                      << "\n  username: \"\"\n  chroot: \"\"\n  zonesdir: \"" << dir_
                                      << "\"\n  database: \"\"\n  zonelistfile: \"" << dir_ << "/zone.list\"\n"
                                      << "  xfrdfile: \"" << dir_ << "/xfrd.state\"\n  pidfile: \"" << dir_
                                      << "/nsd.pid\"\n  logfile: \"" << dir_ << "/nsd.log\"\n  server-count: 1\n"
                                      << "  verbosity: 1\nremote-control:\n  control-enable: no\nzone:\n"
                                      << "  name: \"cluster.local\"\n  zonefile: \"cluster.local.zone\"\n"
                                      << "  provide-xfr: 127.0.0.0/8 NOKEY\n";
    pid_ = fork();
    if (pid_ == 0) {
      execlp("nsd", "nsd", "-d", "-c", (dir_ + "/nsd.conf").c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 100; ++i) {
      auto a = UdpExchange("127.0.0.1", port_, MakeQuery("cluster.local", 6), 100);
      if (a) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  void Reload() { kill(pid_, SIGHUP); }
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // Zone transfers nsd has served, from its log.
  int Transfers() const {
    std::ifstream in(dir_ + "/nsd.log");
    int n = 0;
    for (std::string line; std::getline(in, line);) n += line.find("axfr for cluster.local.") != std::string::npos;
    return n;
  }

 private:
  std::string dir_;
  uint16_t port_;
  pid_t pid_ = -1;
  int generation_ = 0;
};

// Between nodedns and nsd: UDP passed through; each TCP connection passed
// through, or cut after `cut_after` bytes of nsd's answer when that is set.
class CuttingProxy {
 public:
  CuttingProxy(uint16_t port, uint16_t upstream) : upstream_(upstream) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    udp_ = socket(AF_INET, SOCK_DGRAM, 0);
    tcp_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(tcp_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    bind(udp_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    bind(tcp_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    listen(tcp_, 8);
    thread_ = std::thread([this] { Run(); });
  }
  ~CuttingProxy() {
    stop_ = true;
    thread_.join();
    close(udp_);
    close(tcp_);
  }
  std::atomic<size_t> cut_after{0};  // 0: pass everything

 private:
  void Run() {
    while (!stop_) {
      pollfd p[2] = {{udp_, POLLIN, 0}, {tcp_, POLLIN, 0}};
      if (poll(p, 2, 100) <= 0) continue;
      if (p[0].revents & POLLIN) {
        uint8_t buf[4096];
        sockaddr_in from{};
        socklen_t len = sizeof(from);
        ssize_t n = recvfrom(udp_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n > 0) {
          auto a = UdpExchange("127.0.0.1", upstream_, std::vector<uint8_t>(buf, buf + n), 1000);
          if (a) sendto(udp_, a->data(), a->size(), 0, reinterpret_cast<sockaddr*>(&from), len);
        }
      }
      if (p[1].revents & POLLIN) Relay(accept(tcp_, nullptr, nullptr));
    }
  }
  // One connection, to its end (one transfer at a time is all the test needs).
  void Relay(int client) {
    if (client < 0) return;
    int server = ConnectLoopback(SOCK_STREAM, upstream_);
    size_t sent_back = 0, limit = cut_after;
    for (bool open = server >= 0; open && !stop_;) {
      pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      if (poll(p, 2, 2000) <= 0) break;
      uint8_t buf[4096];
      if (p[0].revents) {
        ssize_t n = recv(client, buf, sizeof(buf), 0);
        if (n <= 0 || send(server, buf, n, MSG_NOSIGNAL) != n) open = false;
      }
      if (open && p[1].revents) {
        ssize_t n = recv(server, buf, sizeof(buf), 0);
        if (n <= 0) break;
        if (limit && sent_back + n > limit) n = static_cast<ssize_t>(limit - sent_back);
        if (n > 0 && send(client, buf, n, MSG_NOSIGNAL) != n) break;
        sent_back += n;
        if (limit && sent_back >= limit) break;  // cut
      }
    }
    if (server >= 0) close(server);
    close(client);
  }
  uint16_t upstream_;
  int udp_, tcp_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class MirrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string out;
    if (RunProgram({"sh", "-c", "command -v nsd"}, &out) != 0) {
      GTEST_SKIP() << "nsd not installed (Debian package nsd; scripts/deps.sh test installs it)";
    }
    nsd_port_ = FreeLoopbackPort();
    nsd_ = std::make_unique<Nsd>(dir_.path(), nsd_port_);
    nsd_->WriteZone(1, 50);
    ASSERT_TRUE(nsd_->Start()) << "nsd did not answer";
  }
  void StartDaemon(uint16_t server_port, const std::string& extra_mirror = "") {
    std::string cfg = dir_.Write("nodedns.toml", "[mirror]\ncheck_interval_s = 1\nmin_transfer_interval_s = 0\n" +
                                                     extra_mirror + "[upstream]\ntimeout_ms = 300\n"
                                                     "[[zone]]\nname = \"cluster.local\"\nservers = [\"127.0.0.1:" +
                                                     std::to_string(server_port) + "\"]\nmirror = true\n");
    daemon_ = DaemonProcess::Start({"--config", cfg, "--upstream", "127.0.0.1:1"});
    ASSERT_NE(daemon_->port(), 0) << daemon_->log();
  }
  std::string Dnsctl(std::vector<std::string> args) {
    std::string out;
    EXPECT_EQ(daemon_->Dnsctl(args, &out), 0) << out;
    return out;
  }
  // Waits up to `seconds` for `dnsctl stats --json` to contain `want`.
  bool StatsShow(const std::string& want, int seconds = 10) {
    auto deadline = Clock::now() + std::chrono::seconds(seconds);
    while (Clock::now() < deadline) {
      if (Dnsctl({"stats", "--json"}).find(want) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  // The first number after "KEY": in `dnsctl stats --json`.
  int64_t Stat(const std::string& key) {
    std::string json = Dnsctl({"stats", "--json"});
    size_t at = json.find("\"" + key + "\": ");
    return at == std::string::npos ? -1 : std::stoll(json.substr(at + key.size() + 4));
  }
  std::string Dig(const std::string& args) {
    return RunCommand("dig @127.0.0.1 -p " + std::to_string(daemon_->port()) + " +tries=1 +time=3 " + args);
  }

  TempDir dir_;
  uint16_t nsd_port_ = 0;
  std::unique_ptr<Nsd> nsd_;
  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_F(MirrorTest, TransfersOnlyWhenTheSerialChangesAndAnswersNamesNeverAskedThroughAnOutage) {
  StartDaemon(nsd_port_);
  ASSERT_TRUE(StatsShow("\"serial\": 1")) << Dnsctl({"stats", "--json"}) << daemon_->log();
  EXPECT_THAT(Dnsctl({"stats"}), HasSubstr("mirror      cluster.local.: serial 1, 100 records (100 entries)"));
  EXPECT_THAT(Dnsctl({"dump", "--name", "svc33.default.svc.cluster.local"}), HasSubstr("A positive"));
  EXPECT_THAT(Dnsctl({"dump", "--name", "_http._tcp.svc33.default.svc.cluster.local"}), HasSubstr("SRV positive"));
  EXPECT_EQ(nsd_->Transfers(), 1);

  // Serial unchanged: SOA checks, no transfer.
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  EXPECT_EQ(nsd_->Transfers(), 1);
  EXPECT_THAT(Dnsctl({"stats", "--json"}), HasSubstr("\"transfers\": 1"));

  // The mirror takes no authority: a name absent from it is asked upstream.
  int64_t asked = Stat("upstream_queries");
  EXPECT_THAT(Dig("absent.default.svc.cluster.local A"), HasSubstr("status: NXDOMAIN"));
  EXPECT_EQ(Stat("upstream_queries"), asked + 1);

  // Serial changed: transferred again, the new name is there.
  nsd_->WriteZone(2, 51);
  nsd_->Reload();
  ASSERT_TRUE(StatsShow("\"serial\": 2")) << daemon_->log();
  EXPECT_EQ(nsd_->Transfers(), 2);
  EXPECT_THAT(Dnsctl({"dump", "--name", "svc51.default.svc.cluster.local"}), HasSubstr("A positive"));

  // Outage: the cluster DNS is gone. Names this node never asked, their 5 s
  // TTL long past, are answered stale with EDE 3.
  nsd_->Stop();
  std::this_thread::sleep_for(std::chrono::seconds(6));
  std::string out = Dig("svc42.default.svc.cluster.local A");
  EXPECT_THAT(out, HasSubstr("status: NOERROR"));
  EXPECT_THAT(out, HasSubstr("10.96.0.43"));
  EXPECT_THAT(out, HasSubstr("EDE: 3"));
  out = Dig("_http._tcp.svc7.default.svc.cluster.local SRV");
  EXPECT_THAT(out, HasSubstr("ANSWER: 1,"));
  EXPECT_THAT(out, HasSubstr("EDE: 3"));
  EXPECT_GE(Stat("failures"), 1) << "SOA checks against a dead server count as failures";
  EXPECT_EQ(daemon_->Stop(), 0) << daemon_->log();
}

TEST_F(MirrorTest, ACutTransferAndAZoneOverTheCapChangeNothingCached) {
  // Through a proxy that passes the first transfer whole.
  uint16_t proxy_port = FreeLoopbackPort();
  CuttingProxy proxy(proxy_port, nsd_port_);
  StartDaemon(proxy_port);
  ASSERT_TRUE(StatsShow("\"serial\": 1")) << daemon_->log();
  // The next one is cut after 300 bytes of nsd's answer.
  proxy.cut_after = 300;
  nsd_->WriteZone(2, 60);
  nsd_->Reload();
  ASSERT_TRUE(StatsShow("closed the connection mid-transfer")) << Dnsctl({"stats", "--json"}) << daemon_->log();
  EXPECT_THAT(Dnsctl({"stats", "--json"}), HasSubstr("\"serial\": 1"));
  EXPECT_THAT(Dnsctl({"dump", "--name", "svc55.default.svc.cluster.local"}), HasSubstr("0 entries"));
  EXPECT_THAT(Dnsctl({"dump", "--name", "svc50.default.svc.cluster.local"}), HasSubstr("A positive"));
  EXPECT_EQ(daemon_->Stop(), 0) << daemon_->log();

  // A zone over the cap is not mirrored at all.
  daemon_.reset();
  StartDaemon(nsd_port_, "max_records = 10\n");
  ASSERT_TRUE(StatsShow("over the cap of 10 records")) << daemon_->log();
  EXPECT_THAT(Dnsctl({"dump", "--name", "svc1.default.svc.cluster.local"}), HasSubstr("0 entries"));
  EXPECT_THAT(Dnsctl({"stats", "--json"}), HasSubstr("\"serial\": null"));
  EXPECT_EQ(daemon_->Stop(), 0) << daemon_->log();
}

}  // namespace
}  // namespace nodedns::testing
