// Operations end to end: the real nodedns and dnsctl binaries, the control
// socket, the HTTP endpoint (checked with promtool), snapshots across
// restarts, reloads and privilege dropping, against a fake upstream.

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/dns/constants.h"
#include "tests/support/daemon_fixture.h"
#include "tests/support/daemon_process.h"
#include "tests/support/dns_client.h"
#include "tests/support/endpoints.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/load_client.h"

namespace nodedns::testing {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;
using Mode = FakeUpstream::Mode;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Body(const std::string& response) {
  size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

// "name{labels} value" lines of a Prometheus text page, by series.
std::map<std::string, double> ParseMetrics(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t sp = line.rfind(' ');
    out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
  }
  return out;
}

class OperationsTest : public DaemonFixture {
 protected:
  dns::Message Ask(const std::string& name, uint16_t type = dns::kTypeA) {
    auto a = UdpExchange("127.0.0.1", daemon_->port(), MakeQuery(name, type));
    EXPECT_TRUE(a.has_value()) << "no answer for " << name;
    return a ? Parse(*a) : dns::Message{};
  }
  json Ctl(const std::vector<std::string>& args, int want_exit = 0) {
    std::vector<std::string> a = {"--json"};
    a.insert(a.end(), args.begin(), args.end());
    std::string out;
    int rc = daemon_->Dnsctl(a, &out);
    EXPECT_EQ(rc, want_exit) << out;
    json j = json::parse(out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << out;
    return j;
  }
  // A worker counts an answer's latency once the answer is sent, so the
  // client can hold the answer before it is counted: wait (bounded) until
  // the histogram has `n` answers.
  void AwaitLatencyCount(int n) {
    for (int i = 0; i < 200; ++i) {
      if (Ctl({"stats"})["latency_seconds"]["count"].get<int>() >= n) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "the latency histogram never counted " << n << " answers";
  }
  std::string CtlText(const std::vector<std::string>& args, int* rc = nullptr) {
    std::string out;
    int code = daemon_->Dnsctl(args, &out);
    if (rc) *rc = code;
    return out;
  }

};

TEST_F(OperationsTest, StatsCountWhatHappenedInHumanAndJsonForm) {
  StartDaemon();
  for (int i = 0; i < 3; ++i) Ask("a" + std::to_string(i) + ".example");
  for (int i = 0; i < 3; ++i) Ask("a0.example");  // hits
  ASSERT_TRUE(TcpExchange("127.0.0.1", daemon_->port(), MakeQuery("a1.example", dns::kTypeA)).has_value());
  AwaitLatencyCount(7);

  json s = Ctl({"stats"});
  ASSERT_TRUE(s["ok"].get<bool>());
  const json& c = s["counters"];
  EXPECT_EQ(c["queries"], 7);
  EXPECT_EQ(c["queries_udp"], 6);
  EXPECT_EQ(c["queries_tcp"], 1);
  EXPECT_EQ(c["cache_hits"], 4);
  EXPECT_EQ(c["cache_misses"], 3);
  EXPECT_EQ(c["upstream_queries"], upstream_->queries());
  EXPECT_EQ(c["upstream_queries"], 3);
  EXPECT_EQ(c["upstream_failures"], 0);
  EXPECT_EQ(c["stale_answers"], 0);
  EXPECT_EQ(c["coalesced"], 0);
  EXPECT_EQ(c["cache_entries"], 3);
  EXPECT_DOUBLE_EQ(s["hit_ratio"].get<double>(), 4.0 / 7.0);
  EXPECT_EQ(s["latency_seconds"]["count"], 7);
  EXPECT_GT(s["latency_seconds"]["p99"].get<double>(), 0);
  ASSERT_EQ(s["upstreams"].size(), 1u);
  EXPECT_EQ(s["upstreams"][0]["server"], upstream_->address());
  EXPECT_EQ(s["upstreams"][0]["state"], "closed");
  EXPECT_EQ(s["upstreams"][0]["queries"], 3);
  EXPECT_FALSE(s["snapshot"]["enabled"].get<bool>());

  int rc = -1;
  std::string text = CtlText({"stats"}, &rc);
  EXPECT_EQ(rc, 0) << text;
  EXPECT_THAT(text, HasSubstr("queries     7 (udp 6, tcp 1)"));
  EXPECT_THAT(text, HasSubstr("hits 4, misses 3, hit ratio 57.1%; 3 entries"));
  EXPECT_THAT(text, HasSubstr(upstream_->address() + " (zone .): closed for"));
  EXPECT_THAT(text, HasSubstr("snapshot    off"));
}

TEST_F(OperationsTest, StaleAnswersAndBreakerStateShowInStatsAndUpstreams) {
  upstream_->set_ttl(1);
  StartDaemon();
  Ask("s.example");
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));  // expired
  upstream_->set_mode(Mode::kServFail);
  for (int i = 0; i < 6; ++i) {
    dns::Message m = Ask("s.example");
    EXPECT_EQ(m.rcode(), dns::kNoError);
    ASSERT_EQ(m.answers.size(), 1u);
    EXPECT_EQ(m.answers[0].ttl, 30u);  // served stale
  }
  // Misses for other names fail over to nothing and open the breaker.
  for (int i = 0; i < 4; ++i) Ask("miss" + std::to_string(i) + ".example");

  json s = Ctl({"stats"});
  const json& c = s["counters"];
  EXPECT_EQ(c["stale_answers"], 6);
  EXPECT_GE(c["upstream_failures"].get<int>(), 3);
  EXPECT_EQ(s["stale_age_seconds"]["count"], 6);
  json u = Ctl({"upstreams"});
  ASSERT_EQ(u["upstreams"].size(), 1u);
  EXPECT_EQ(u["upstreams"][0]["state"], "open");
  EXPECT_GE(u["upstreams"][0]["failures"].get<int>(), 3);
  ASSERT_EQ(u["zones"].size(), 1u);
  EXPECT_EQ(u["zones"][0]["zone"], ".");
  EXPECT_EQ(u["zones"][0]["servers"][0], upstream_->address());

  std::string text = CtlText({"upstreams"});
  EXPECT_THAT(text, HasSubstr("zone .: servers " + upstream_->address()));
  EXPECT_THAT(text, HasSubstr(": open for"));
  EXPECT_THAT(CtlText({"stats"}), HasSubstr("6 answers (client timeout"));
}

TEST_F(OperationsTest, DumpAndFlush) {
  StartDaemon();
  Ask("keep.example");
  Ask("keep.example", dns::kTypeAAAA);
  Ask("drop.example");
  Ask("drop.example", dns::kTypeAAAA);

  json d = Ctl({"dump", "--name", "DROP.example"});
  ASSERT_EQ(d["entries"].size(), 2u);
  for (const json& e : d["entries"]) {
    EXPECT_EQ(e["name"], "drop.example.");
    EXPECT_EQ(e["state"], "fresh");
    EXPECT_GT(e["ttl_remaining_seconds"].get<int>(), 250);
  }
  EXPECT_THAT(CtlText({"dump"}), HasSubstr("keep.example. AAAA positive fresh ttl"));

  json f = Ctl({"flush", "drop.example"});
  EXPECT_EQ(f["removed"], 2);
  EXPECT_EQ(Ctl({"dump", "--name", "drop.example"})["entries"].size(), 0u);
  EXPECT_EQ(Ctl({"stats"})["counters"]["cache_entries"], 2);
  int before = upstream_->queries_for("drop.example.");
  Ask("drop.example");
  EXPECT_EQ(upstream_->queries_for("drop.example."), before + 1);  // asked again
  Ask("keep.example");
  EXPECT_EQ(upstream_->queries_for("keep.example."), 2);  // A and AAAA once each: still cached

  EXPECT_THAT(CtlText({"flush", "--all"}), HasSubstr("removed 3 entries"));
  EXPECT_EQ(Ctl({"stats"})["counters"]["cache_entries"], 0);
}

TEST_F(OperationsTest, ErrorsAreClearWithDocumentedExitCodes) {
  StartDaemon();
  int rc = -1;
  std::string out = CtlText({"frobnicate"}, &rc);
  EXPECT_EQ(rc, 2);
  EXPECT_THAT(out, HasSubstr("unknown command 'frobnicate'"));
  out = CtlText({"flush"}, &rc);
  EXPECT_EQ(rc, 2);
  out = CtlText({"snapshot"}, &rc);  // no snapshot path configured
  EXPECT_EQ(rc, 1);
  EXPECT_THAT(out, HasSubstr("no snapshot path configured"));

  // Not running: no socket file, or a socket nobody answers on.
  TempDir dir;
  RunProgram({DnsctlBinary(), "--socket", dir.path() + "/none.sock", "stats"}, &out);
  EXPECT_EQ(RunProgram({DnsctlBinary(), "--socket", dir.path() + "/none.sock", "stats"}, &out), 3);
  EXPECT_THAT(out, HasSubstr("nodedns is not running"));

  // The daemon's side: malformed and unknown requests get a JSON error.
  auto raw = [&](const std::string& line) { return ControlExchange(daemon_->control_socket(), line); };
  json bad = raw("this is not json\n");
  EXPECT_FALSE(bad["ok"].get<bool>());
  EXPECT_THAT(bad["error"].get<std::string>(), HasSubstr("malformed request"));
  json unknown = raw("{\"command\":\"explode\"}\n");
  EXPECT_EQ(unknown["error"], "unknown command 'explode'");
  json huge = raw(std::string(70000, 'x'));
  EXPECT_EQ(huge["error"], "request too large");
  // The daemon is unharmed.
  EXPECT_EQ(Ask("still.example").rcode(), dns::kNoError);
}

TEST_F(OperationsTest, ControlSocketModeStaleFileAndLiveOwner) {
  TempDir dir;
  std::string path = dir.path() + "/ctl.sock";
  // What a crashed run leaves: a socket file nobody listens on.
  {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    close(fd);
  }
  StartDaemon({"--control-socket", path});
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_TRUE(Ctl({"health"})["healthy"].get<bool>());

  // A live socket is not stolen: a second nodedns refuses to start.
  auto second = DaemonProcess::Start({"--upstream", upstream_->address(), "--control-socket", path});
  EXPECT_EQ(second->port(), 0);
  EXPECT_EQ(second->Stop(), 1);
  EXPECT_THAT(second->log(), HasSubstr("another process is serving on " + path));
  EXPECT_TRUE(Ctl({"health"})["healthy"].get<bool>());  // the first one still answers

  // A file that is not a socket is never deleted.
  std::string file = dir.Write("not-a-socket", "precious");
  auto third = DaemonProcess::Start({"--upstream", upstream_->address(), "--control-socket", file});
  EXPECT_EQ(third->Stop(), 1);
  EXPECT_THAT(third->log(), HasSubstr("exists and is not a socket"));
  EXPECT_EQ(ReadFile(file), "precious");

  // Permission denied, for a user outside the socket's group.
  if (geteuid() == 0) {
    std::string out;
    int rc = RunProgram({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", DnsctlBinary(), "--socket",
                         path, "stats"},
                        &out);
    EXPECT_EQ(rc, 4) << out;
    EXPECT_THAT(out, HasSubstr("permission denied"));
  }
  // On a clean exit the socket file goes.
  EXPECT_EQ(daemon_->Stop(), 0);
  EXPECT_NE(access(path.c_str(), F_OK), 0);
  daemon_.reset();
}

TEST_F(OperationsTest, ControlSocketOwnerAndGroupFromTheConfig) {
  if (geteuid() != 0) GTEST_SKIP() << "chown to another user needs root";
  TempDir dir;
  std::string cfg = dir.Write("nodedns.toml", "[control]\nmode = \"0640\"\nowner = \"nobody\"\ngroup = \"nogroup\"\n"
                                              "[[zone]]\nname = \".\"\nservers = [\"" + upstream_->address() + "\"]\n");
  StartDaemon({"--config", cfg});
  struct stat st;
  ASSERT_EQ(stat(daemon_->control_socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(st.st_uid, 65534u);  // nobody
  EXPECT_EQ(st.st_gid, 65534u);  // nogroup
  std::string bad = dir.Write("bad.toml", "[control]\nmode = \"rw-rw----\"\n");
  std::string out;
  EXPECT_EQ(RunProgram({NodednsBinary(), "--check-config", bad}, &out), 1);
  EXPECT_THAT(out, HasSubstr(bad + ":2: 'control.mode' must be an octal mode"));
}

TEST_F(OperationsTest, SnapshotIsWrittenPeriodically) {
  TempDir dir;
  std::string snap = dir.path() + "/cache.snap";
  std::string cfg = dir.Write("nodedns.toml", "[snapshot]\npath = \"" + snap + "\"\ninterval_s = 1\n[[zone]]\nname = " +
                                                  "\".\"\nservers = [\"" + upstream_->address() + "\"]\n");
  StartDaemon({"--config", cfg});
  Ask("periodic.example");
  json s;
  for (int i = 0; i < 40; ++i) {
    s = Ctl({"stats"});
    if (s["snapshot"]["writes"].get<int>() >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GE(s["snapshot"]["writes"].get<int>(), 1);
  EXPECT_GE(s["snapshot"]["age_seconds"].get<double>(), 0);
  EXPECT_EQ(access(snap.c_str(), F_OK), 0);
}

TEST_F(OperationsTest, MetricsHealthAndReadinessOverHttp) {
  StartDaemon();
  ASSERT_FALSE(daemon_->metrics_address().empty());
  for (int i = 0; i < 3; ++i) Ask("m.example");
  AwaitLatencyCount(3);
  std::string r = HttpGet(daemon_->metrics_address(), "/metrics");
  ASSERT_THAT(r, HasSubstr("HTTP/1.1 200 OK"));
  EXPECT_THAT(r, HasSubstr("Content-Type: text/plain; version=0.0.4"));
  std::string body = Body(r);
  auto m = ParseMetrics(body);
  EXPECT_EQ(m["nodedns_queries_udp_total"], 3);
  EXPECT_EQ(m["nodedns_cache_hits_total"], 2);
  EXPECT_EQ(m["nodedns_cache_entries"], 1);
  EXPECT_EQ(m["nodedns_query_duration_seconds_count"], 3);
  EXPECT_EQ(m["nodedns_query_duration_seconds_bucket{le=\"+Inf\"}"], 3);
  EXPECT_EQ(m["nodedns_stale_age_seconds_count"], 0);
  EXPECT_EQ(m["nodedns_upstream_breaker_open{zone=\".\",server=\"" + upstream_->address() + "\"}"], 0);
  EXPECT_EQ(m["nodedns_upstream_server_queries_total{zone=\".\",server=\"" + upstream_->address() + "\"}"], 1);
  // The same counters as dnsctl: every counter of the JSON stats is a metric.
  json s = Ctl({"stats"});
  for (auto& [name, value] : s["counters"].items()) {
    if (name == "queries" || name == "stale_answers" || name == "upstream_failures" || name == "cache_bytes" ||
        name == "cache_entries") {
      continue;  // totals and gauges, named without _total
    }
    EXPECT_EQ(m.count("nodedns_" + name + "_total"), 1u) << name;
  }

  // promtool (Debian's prometheus package) accepts the page.
  TempDir dir;
  std::string file = dir.Write("metrics.txt", body);
  std::string out;
  int rc = RunProgram({"sh", "-c", "promtool check metrics < \"$0\"", file}, &out);
  EXPECT_EQ(rc, 0) << "promtool: " << out;

  EXPECT_THAT(HttpGet(daemon_->metrics_address(), "/healthz"), HasSubstr("200 OK"));
  EXPECT_THAT(HttpGet(daemon_->metrics_address(), "/readyz"), HasSubstr("200 OK"));
  EXPECT_THAT(HttpGet(daemon_->metrics_address(), "/nope"), HasSubstr("404 Not Found"));
  EXPECT_THAT(HttpExchange(daemon_->metrics_address(), "POST /metrics HTTP/1.1\r\n\r\n"), HasSubstr("405"));
  EXPECT_THAT(HttpExchange(daemon_->metrics_address(), "garbage\r\n\r\n"), HasSubstr("400 Bad Request"));
  EXPECT_THAT(HttpExchange(daemon_->metrics_address(), std::string(9000, 'G')), HasSubstr("431"));
}

// [health] listen (issue 14): the probes on an address of their own (as
// NodeLocal DNSCache's health plugin on the node-local address), metrics on
// another; each answers only its own paths.
TEST_F(OperationsTest, HealthProbesOnAnAddressOfTheirOwn) {
  TempDir dir;
  std::string cfg = dir.Write("nodedns.toml", "[health]\nlisten = \"127.0.0.1:0\"\n[[zone]]\nname = \".\"\n"
                                              "servers = [\"" + upstream_->address() + "\"]\n");
  StartDaemon({"--config", cfg});
  ASSERT_FALSE(daemon_->health_address().empty()) << "no health line in the ready file";
  ASSERT_NE(daemon_->health_address(), daemon_->metrics_address());
  EXPECT_THAT(HttpGet(daemon_->health_address(), "/healthz"), HasSubstr("200 OK"));
  EXPECT_THAT(HttpGet(daemon_->health_address(), "/readyz"), HasSubstr("200 OK"));
  std::string no_metrics = HttpGet(daemon_->health_address(), "/metrics");
  EXPECT_THAT(no_metrics, HasSubstr("404 Not Found"));
  EXPECT_THAT(no_metrics, HasSubstr("metrics have an address of their own"));
  EXPECT_THAT(HttpGet(daemon_->metrics_address(), "/metrics"), HasSubstr("nodedns_queries"));
  EXPECT_THAT(HttpGet(daemon_->metrics_address(), "/healthz"), HasSubstr("404 Not Found"));
  // Both count as the HTTP endpoint's connections.
  EXPECT_GE(Ctl({"stats"})["connections"]["http"]["accepted"].get<int>(), 5);
  // The flag overrides the file; "" puts the probes back with /metrics.
  EXPECT_EQ(daemon_->Stop(), 0) << daemon_->log();
  StartDaemon({"--config", cfg, "--health-listen", ""});
  EXPECT_TRUE(daemon_->health_address().empty());
  EXPECT_THAT(HttpGet(daemon_->metrics_address(), "/healthz"), HasSubstr("200 OK"));
  // The same address for both is refused with a clear error.
  std::string same = dir.Write("same.toml", "[metrics]\nlisten = \"127.0.0.1:9999\"\n[health]\nlisten = \"127.0.0.1:9999\"\n");
  std::string out;
  EXPECT_EQ(RunProgram({NodednsBinary(), "--check-config", same}, &out), 1);
  EXPECT_THAT(out, HasSubstr("health.listen is metrics.listen (127.0.0.1:9999)"));
}

TEST_F(OperationsTest, SnapshotSurvivesRestartWithDeadlinesIntact) {
  TempDir dir;
  std::string snap = dir.path() + "/cache.snap";
  upstream_->set_ttl(300);
  StartDaemon({"--snapshot", snap});
  Ask("long.example");
  json w = Ctl({"snapshot"});
  EXPECT_EQ(w["entries"], 1);
  EXPECT_EQ(Ctl({"stats"})["snapshot"]["writes"], 1);
  EXPECT_THAT(CtlText({"snapshot"}), HasSubstr("snapshot written to " + snap + ": 1 entries"));
  ASSERT_EQ(daemon_->Stop(), 0);
  EXPECT_THAT(daemon_->log(), Not(HasSubstr(" error ")));

  StartDaemon({"--snapshot", snap});
  EXPECT_EQ(Ctl({"stats"})["snapshot"]["loaded_entries"], 1);
  int before = upstream_->queries();
  dns::Message m = Ask("long.example");
  EXPECT_EQ(upstream_->queries(), before);  // from the loaded cache
  ASSERT_EQ(m.answers.size(), 1u);
  EXPECT_LE(m.answers[0].ttl, 300u);
  EXPECT_GT(m.answers[0].ttl, 280u);
}

TEST_F(OperationsTest, DamagedSnapshotIsReportedKeptAndIgnored) {
  TempDir dir;
  std::string snap = dir.path() + "/cache.snap";
  std::string garbage = "NDNSSNAP\x00\x00\x00\x01 this file was cut short";
  std::ofstream(snap, std::ios::binary) << garbage;
  StartDaemon({"--snapshot", snap});
  EXPECT_THAT(daemon_->log(), HasSubstr("snapshot is damaged"));
  EXPECT_THAT(daemon_->log(), HasSubstr("kept as " + snap + ".bad"));
  EXPECT_EQ(ReadFile(snap + ".bad"), garbage);  // the evidence
  json s = Ctl({"stats"});
  EXPECT_EQ(s["counters"]["cache_entries"], 0);
  EXPECT_THAT(s["snapshot"]["load_error"].get<std::string>(), HasSubstr("damaged"));
  EXPECT_EQ(Ask("works.example").rcode(), dns::kNoError);
  // The next write makes a good snapshot again.
  EXPECT_EQ(Ctl({"snapshot"})["entries"], 1);
}

TEST_F(OperationsTest, FailedSnapshotWriteKeepsThePreviousOne) {
  // A full disk (a 16 KiB tmpfs in a private mount namespace) when root; a
  // read-only directory otherwise.
  TempDir dir;
  std::string state = dir.path() + "/state";
  ASSERT_EQ(mkdir(state.c_str(), 0755), 0);
  std::string snap = state + "/cache.snap";
  DaemonProcess::Options o;
  o.args = {"--upstream", upstream_->address(), "--snapshot", snap};
  bool root = geteuid() == 0;
  if (root) {
    // Root ignores a read-only directory: the full disk needs a mount
    // namespace, which a chroot may not allow.
    std::string out;
    if (RunProgram({"unshare", "--mount", "--propagation", "private", "sh", "-c",
                    "mount -t tmpfs -o size=16k tmpfs \"$0\" && umount \"$0\"", state}, &out) != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs in a private mount namespace here (a chroot?): " << out;
    }
    o.wrapper = {"unshare", "--mount", "--propagation", "private", "sh", "-c",
                 "mount -t tmpfs -o size=16k tmpfs \"$0\" && exec \"$@\"", state};
  }
  daemon_ = DaemonProcess::Start(o);
  ASSERT_NE(daemon_->port(), 0) << daemon_->log();
  // Where the daemon sees its state directory.
  std::string seen = root ? "/proc/" + std::to_string(daemon_->pid()) + "/root" + snap : snap;
  for (int i = 0; i < 3; ++i) Ask("first" + std::to_string(i) + ".example");
  ASSERT_EQ(Ctl({"snapshot"})["entries"], 3);
  std::string previous = ReadFile(seen);
  ASSERT_FALSE(previous.empty());

  std::string expect_error;
  if (root) {
    for (int i = 0; i < 400; ++i) Ask("many" + std::to_string(i) + ".example");  // > 16 KiB
    expect_error = "No space left on device";
  } else {
    ASSERT_EQ(chmod(state.c_str(), 0555), 0);
    Ask("more.example");
    expect_error = "Permission denied";
  }
  json failed = Ctl({"snapshot"}, 1);
  EXPECT_FALSE(failed["ok"].get<bool>());
  EXPECT_THAT(failed["error"].get<std::string>(), HasSubstr(expect_error));
  EXPECT_EQ(ReadFile(seen), previous);
  EXPECT_NE(access((seen + ".tmp." + std::to_string(daemon_->pid())).c_str(), F_OK), 0);
  json s = Ctl({"stats"});
  EXPECT_EQ(s["snapshot"]["write_failures"], 1);
  EXPECT_EQ(s["snapshot"]["writes"], 1);
  EXPECT_THAT(s["snapshot"]["last_error"].get<std::string>(), HasSubstr(expect_error));
  EXPECT_THAT(daemon_->log(), HasSubstr("snapshot write failed, the previous snapshot is kept"));
  if (!root) chmod(state.c_str(), 0755);
}

TEST_F(OperationsTest, RestartDuringAnOutageAnswersEveryCachedNameStaleAtOnce) {
  // The scenario the persistent cache exists for: the control plane is down
  // and nodedns restarts (upgrade, OOM kill, node maintenance).
  TempDir dir;
  std::string snap = dir.path() + "/cache.snap";
  upstream_->set_ttl(1);
  StartDaemon({"--snapshot", snap});
  std::vector<std::string> names;
  for (int i = 0; i < 200; ++i) names.push_back("svc" + std::to_string(i) + ".ns.svc.cluster.local");
  {
    LoadClient warm(daemon_->port(), names, 1000, std::chrono::milliseconds(200));
    warm.Join();
    for (const auto& r : warm.results()) ASSERT_EQ(r.rcode, dns::kNoError);
  }
  upstream_->set_mode(Mode::kDrop);  // the outage begins
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // every entry has expired
  ASSERT_EQ(daemon_->Stop(), 0) << daemon_->log();

  StartDaemon({"--snapshot", snap});
  auto started = std::chrono::steady_clock::now();
  LoadClient after(daemon_->port(), names, 1000, std::chrono::milliseconds(200));
  after.Join();
  ASSERT_EQ(after.results().size(), names.size());
  auto last = started;
  for (const auto& r : after.results()) {
    ASSERT_TRUE(r.answered) << names[r.name_index];
    EXPECT_EQ(r.rcode, dns::kNoError);
    EXPECT_EQ(r.ede, dns::kEdeStaleAnswer);
    EXPECT_EQ(r.ttl, 30u);
    EXPECT_EQ(r.rdata, std::string("\xc0\x00\x02\x01", 4));
    last = std::max(last, r.received);
  }
  EXPECT_LT(last - started, std::chrono::seconds(1));
  EXPECT_EQ(Ctl({"stats"})["snapshot"]["loaded_entries"], 200);
}

TEST_F(OperationsTest, ReloadAppliesNewUpstreamsKeepsCacheAndRejectsBadConfigs) {
  auto second = FakeUpstream::Start();
  second->set_address(0xC0000202);  // 192.0.2.2
  TempDir dir;
  auto config_for = [&](const std::string& server, int max_qps) {
    return "[server]\nlisten = [\"127.0.0.1:0\"]\n[upstream]\nmax_qps = " + std::to_string(max_qps) +
           "\n[[zone]]\nname = \".\"\nservers = [\"" + server + "\"]\n";
  };
  std::string cfg = dir.Write("nodedns.toml", config_for(upstream_->address(), 2000));
  daemon_ = DaemonProcess::Start({"--config", cfg}, /*listen_in_args=*/true);
  ASSERT_NE(daemon_->port(), 0) << daemon_->log();
  Ask("cached.example");

  // A query in flight across the reload is still answered.
  upstream_->set_delay_ms(400);
  std::optional<std::vector<uint8_t>> inflight;
  std::thread t([&] { inflight = UdpExchange("127.0.0.1", daemon_->port(), MakeQuery("slow.example", 1), 3000); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  dir.Write("nodedns.toml", config_for(second->address(), 1000));
  json r = Ctl({"reload"});
  EXPECT_TRUE(r["ok"].get<bool>());
  t.join();
  ASSERT_TRUE(inflight.has_value());
  EXPECT_EQ(Parse(*inflight).rcode(), dns::kNoError);

  dns::Message cached = Ask("cached.example");  // the cache survived
  ASSERT_EQ(cached.answers.size(), 1u);
  EXPECT_EQ(cached.answers[0].rdata, std::string("\xc0\x00\x02\x01", 4));
  EXPECT_EQ(second->queries(), 0);
  dns::Message fresh = Ask("new.example");  // new misses go to the new server
  ASSERT_EQ(fresh.answers.size(), 1u);
  EXPECT_EQ(fresh.answers[0].rdata, std::string("\xc0\x00\x02\x02", 4));
  EXPECT_EQ(second->queries_for("new.example."), 1);
  json u = Ctl({"upstreams"});
  ASSERT_EQ(u["upstreams"].size(), 1u);
  EXPECT_EQ(u["upstreams"][0]["server"], second->address());

  // A bad file: rejected with file:line, the running configuration stays.
  dir.Write("nodedns.toml", config_for(second->address(), 1000) + "[upstream]\nmax_qps = \"lots\"\n");
  std::string out;
  int rc = daemon_->Dnsctl({"reload"}, &out);
  EXPECT_EQ(rc, 1);
  EXPECT_THAT(out, HasSubstr(cfg + ":"));
  // SIGHUP does the same.
  kill(daemon_->pid(), SIGHUP);
  for (int i = 0; i < 100 && daemon_->log().find("reload rejected") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_THAT(daemon_->log(), HasSubstr("reload rejected, the running configuration stays: " + cfg + ":"));
  EXPECT_EQ(Ask("after-bad.example").answers.at(0).rdata, std::string("\xc0\x00\x02\x02", 4));
  json s = Ctl({"stats"});
  EXPECT_EQ(s["reloads"]["count"], 1);
  EXPECT_EQ(s["reloads"]["failures"], 2);

  // A good file again, through SIGHUP; a listen change is reported, not applied.
  dir.Write("nodedns.toml", "[server]\nlisten = [\"127.0.0.1:1\"]\n[[zone]]\nname = \".\"\nservers = [\"" +
                                upstream_->address() + "\"]\n");
  kill(daemon_->pid(), SIGHUP);
  for (int i = 0; i < 100 && Ctl({"stats"})["reloads"]["count"] != 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_THAT(daemon_->log(), HasSubstr("server.listen changed: needs a restart"));
  EXPECT_EQ(Ask("back.example").answers.at(0).rdata, std::string("\xc0\x00\x02\x01", 4));
}

TEST_F(OperationsTest, DropsToAnUnprivilegedUser) {
  if (geteuid() != 0) GTEST_SKIP() << "--user needs the test to run as root";
  StartDaemon({"--user", "nobody"});
  std::string status = ReadFile("/proc/" + std::to_string(daemon_->pid()) + "/status");
  EXPECT_THAT(status, HasSubstr("Uid:\t65534\t65534\t65534\t65534"));
  EXPECT_THAT(status, HasSubstr("Gid:\t65534\t65534\t65534\t65534"));
  EXPECT_THAT(status, HasSubstr("CapEff:\t0000000000000000"));
  EXPECT_THAT(status, HasSubstr("NoNewPrivs:\t1"));
  EXPECT_EQ(Ask("unprivileged.example").rcode(), dns::kNoError);
  EXPECT_EQ(Ctl({"stats"})["counters"]["queries"], 1);

  auto bad = DaemonProcess::Start({"--upstream", upstream_->address(), "--user", "no-such-user-xyz"});
  EXPECT_EQ(bad->Stop(), 1);
  EXPECT_THAT(bad->log(), HasSubstr("no user 'no-such-user-xyz'"));
}

// A fake systemd: a datagram socket at $NOTIFY_SOCKET collecting messages.
class NotifyListener {
 public:
  explicit NotifyListener(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    if (path[0] == '@') addr.sun_path[0] = '\0';
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), len), 0) << std::strerror(errno);
  }
  ~NotifyListener() { close(fd_); }
  // The next message, or "" after `timeout_ms`.
  std::string Next(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return "";
    char buf[4096];
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }

 private:
  std::string path_;
  int fd_ = -1;
};

TEST_F(OperationsTest, NotifiesSystemdReadyWatchdogAndStopping) {
  TempDir dir;
  for (std::string path : {dir.path() + "/notify", "@nodedns-test-notify-" + std::to_string(getpid())}) {
    SCOPED_TRACE(path);
    NotifyListener systemd(path);
    DaemonProcess::Options o;
    o.args = {"--upstream", upstream_->address()};
    o.env = {"NOTIFY_SOCKET=" + path, "WATCHDOG_USEC=200000"};
    auto d = DaemonProcess::Start(o);
    ASSERT_NE(d->port(), 0) << d->log();
    std::string ready = systemd.Next(3000);
    EXPECT_THAT(ready, HasSubstr("READY=1"));
    EXPECT_THAT(ready, HasSubstr("MAINPID=" + std::to_string(d->pid())));
    // Keep-alives at half the watchdog interval.
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(systemd.Next(1000), "WATCHDOG=1");
    EXPECT_EQ(systemd.Next(1000), "WATCHDOG=1");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(600));
    kill(d->pid(), SIGTERM);
    std::string msg;
    do {
      msg = systemd.Next(3000);
    } while (msg == "WATCHDOG=1");
    EXPECT_THAT(msg, HasSubstr("STOPPING=1"));
    EXPECT_EQ(d->Stop(), 0) << d->log();
  }
}

TEST_F(OperationsTest, SampledQueryLogFollowsReload) {
  TempDir dir;
  auto config = [&](int sample) {
    return "[log]\nquery_log_sample = " + std::to_string(sample) + "\n[[zone]]\nname = \".\"\nservers = [\"" +
           upstream_->address() + "\"]\n";
  };
  std::string cfg = dir.Write("nodedns.toml", config(2));
  StartDaemon({"--config", cfg});
  for (int i = 0; i < 4; ++i) Ask("q" + std::to_string(i) + ".example");
  auto count = [&] {
    std::string log = daemon_->log();
    int n = 0;
    for (size_t at = log.find("query client=127.0.0.1:"); at != std::string::npos;
         at = log.find("query client=127.0.0.1:", at + 1)) {
      ++n;
    }
    return n;
  };
  // The line is written just after the answer is sent: give it a moment.
  for (int i = 0; i < 100 && count() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(count(), 2);
  EXPECT_THAT(daemon_->log(), HasSubstr("proto=udp name=q1.example. type=A rcode=NOERROR answers=1"));
  dir.Write("nodedns.toml", config(0));
  Ctl({"reload"});
  for (int i = 0; i < 4; ++i) Ask("r" + std::to_string(i) + ".example");
  EXPECT_EQ(count(), 2);  // off after the reload
}

TEST_F(OperationsTest, PeriodicSummaryLine) {
  TempDir dir;
  std::string cfg = dir.Write("nodedns.toml", "[log]\nsummary_interval_s = 1\n[[zone]]\nname = \".\"\nservers = [\"" +
                                                  upstream_->address() + "\"]\n");
  StartDaemon({"--config", cfg});
  Ask("one.example");
  Ask("one.example");
  for (int i = 0; i < 40 && daemon_->log().find("summary:") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_THAT(daemon_->log(), HasSubstr("summary: queries +2 hits +1 misses +1 stale +0 upstream_queries +1 "
                                        "upstream_failures +0 servfail_sent +0; cache 1 entries; 0 breaker(s) open"));
}

TEST_F(OperationsTest, JsonLogLines) {
  StartDaemon({"--log-format", "json"});
  Ask("x.example");
  ASSERT_EQ(daemon_->Stop(), 0);
  std::istringstream in(daemon_->log());
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    EXPECT_TRUE(j.contains("time") && j.contains("level") && j.contains("msg")) << line;
    ++lines;
  }
  EXPECT_GE(lines, 3);  // listening, counters, stopped
  daemon_.reset();
}

}  // namespace
}  // namespace nodedns::testing
