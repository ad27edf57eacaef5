// Reloads against files an operator, an editor or a hostile process may leave
// behind, with the real binary: 100,000-level nesting (which overflowed the
// stack inside toml++), an empty file (which reset everything to the
// defaults), a file cut mid-write, 5,000 zones, 10 MB and NUL bytes. Each
// is refused with the same message as --check-config gives, the running
// configuration stays in force, and the daemon answers DNS throughout. And
// periodic snapshots and summaries keep coming while reloads come faster.

#include <signal.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

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
using nlohmann::json;
using std::chrono::milliseconds;

std::string Repeat(const std::string& unit, size_t n) {
  std::string out;
  out.reserve(unit.size() * n);
  for (size_t i = 0; i < n; ++i) out += unit;
  return out;
}

std::string ZoneTable(const std::string& name, const std::string& server) {
  return "[[zone]]\nname = \"" + name + "\"\nservers = [\"" + server + "\"]\n";
}

TEST(ReloadLimitsTest, HostileFilesAreRefusedAndTheRunningConfigurationStays) {
  auto first = FakeUpstream::Start();
  auto second = FakeUpstream::Start();
  second->set_address(0xC0000202);  // 192.0.2.2
  TempDir dir;
  const std::string good = "[server]\nlisten = [\"127.0.0.1:0\"]\n" + ZoneTable(".", first->address());
  std::string cfg = dir.Write("nodedns.toml", good);
  auto daemon = DaemonProcess::Start({"--config", cfg}, /*listen_in_args=*/true);
  ASSERT_NE(daemon->port(), 0) << daemon->log();
  int n = 0;
  // A new name each time, so the answer shows which upstream is in force.
  auto answered_by_first = [&] {
    auto a = UdpExchange("127.0.0.1", daemon->port(), MakeQuery("r" + std::to_string(++n) + ".example", 1), 2000);
    return a && Parse(*a).answers.size() == 1 && Parse(*a).answers[0].rdata == std::string("\xc0\x00\x02\x01", 4);
  };
  ASSERT_TRUE(answered_by_first());

  std::string zones_5000;
  for (int i = 0; i < 5000; ++i) zones_5000 += ZoneTable("z" + std::to_string(i) + ".example", second->address());
  // {name, file content, what the refusal says}; each would move "." to the
  // second upstream if it were applied.
  const std::vector<std::tuple<std::string, std::string, std::string>> files = {
      {"deep header", "[" + Repeat("a.", 100000) + "a]\n" + ZoneTable(".", second->address()),
       cfg + ":1: more than 64 dots outside strings on one line"},
      {"deep key", Repeat("a.", 100000) + "a = 1\n" + ZoneTable(".", second->address()),
       cfg + ":1: more than 64 dots"},
      {"deep arrays", "x = " + Repeat("[", 100000) + "\n", cfg + ":1: nested more than 32 levels deep"},
      {"empty", "", cfg + ": the file is empty"},
      {"comments only", "# nodedns\n\n", cfg + ": the file is empty"},
      {"cut mid-write", "[server]\nlisten = [\"127.0.0.1:0\"]\n" + ZoneTable(".", second->address()) + "[log]\nlev",
       "the file looks truncated"},
      {"5000 zones", zones_5000 + ZoneTable(".", second->address()), cfg + ":769: more than 256 [[zone]] tables"},
      {"10 MB", ZoneTable(".", second->address()) + std::string(10 << 20, '#') + "\n",
       cfg + ": the file is larger than 1048576 bytes"},
      {"NUL", ZoneTable(".", second->address()) + std::string("# \0\n", 4), cfg + ":4: a NUL byte"},
  };
  for (const auto& [name, content, error] : files) {
    SCOPED_TRACE(name);
    dir.Write("nodedns.toml", content);
    std::string out;
    EXPECT_EQ(daemon->Dnsctl({"reload"}, &out), 1) << out;
    EXPECT_THAT(out, HasSubstr(error));
    // --check-config says the same about the same file.
    std::string check;
    EXPECT_EQ(RunProgram({NodednsBinary(), "--check-config", cfg}, &check), 1);
    EXPECT_THAT(check, HasSubstr(error));
    ASSERT_TRUE(daemon->alive()) << daemon->log();
    EXPECT_TRUE(answered_by_first());
  }
  EXPECT_THAT(daemon->log(), HasSubstr("To use the defaults on purpose"));
  // SIGHUP takes the same path.
  dir.Write("nodedns.toml", "[" + Repeat("a.", 100000) + "a]\n");
  kill(daemon->pid(), SIGHUP);
  json s;
  for (int i = 0; i < 200; ++i) {
    s = ControlExchange(daemon->control_socket(), "{\"command\":\"stats\"}\n");
    if (s["reloads"]["failures"] == static_cast<int>(files.size()) + 1) break;
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(s["reloads"]["failures"], static_cast<int>(files.size()) + 1);
  EXPECT_EQ(s["reloads"]["count"], 0);
  EXPECT_TRUE(answered_by_first());
  EXPECT_EQ(second->queries(), 0);
  // The cap is the limit, not a ban on many zones; and a good file applies.
  std::string zones_256;
  for (int i = 0; i < 255; ++i) zones_256 += ZoneTable("z" + std::to_string(i) + ".example", first->address());
  dir.Write("nodedns.toml", good + zones_256);
  std::string out;
  EXPECT_EQ(daemon->Dnsctl({"reload"}, &out), 0) << out;
  dir.Write("nodedns.toml", "[server]\nlisten = [\"127.0.0.1:0\"]\n" + ZoneTable(".", second->address()));
  EXPECT_EQ(daemon->Dnsctl({"reload"}, &out), 0) << out;
  auto a = UdpExchange("127.0.0.1", daemon->port(), MakeQuery("after.example", 1));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(Parse(*a).answers.at(0).rdata, std::string("\xc0\x00\x02\x02", 4));
  EXPECT_EQ(daemon->Stop(), 0) << daemon->log();
}

TEST(ReloadLimitsTest, PeriodicSnapshotsAndSummariesKeepTheirScheduleAcrossReloads) {
  auto upstream = FakeUpstream::Start();
  TempDir dir;
  std::string snap = dir.path() + "/cache.snap";
  // A reload every 200 ms plus the time dnsctl takes, against a 2 s snapshot
  // and a 1 s summary interval: a reload that restarted the timers would
  // starve both.
  auto config = [&](int n) {
    return "[snapshot]\npath = \"" + snap + "\"\ninterval_s = 2\n[log]\nsummary_interval_s = 1\n" +
           "query_log_sample = " + std::to_string(n % 2 ? 1000000 : 0) + "\n" + ZoneTable(".", upstream->address());
  };
  std::string cfg = dir.Write("nodedns.toml", config(0));
  auto daemon = DaemonProcess::Start({"--config", cfg});
  ASSERT_NE(daemon->port(), 0) << daemon->log();
  ASSERT_TRUE(UdpExchange("127.0.0.1", daemon->port(), MakeQuery("warm.example", 1)).has_value());
  auto t0 = std::chrono::steady_clock::now();
  int reloads = 0;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(5200)) {
    dir.Write("nodedns.toml", config(reloads));
    std::string out;
    ASSERT_EQ(daemon->Dnsctl({"reload"}, &out), 0) << out;
    ++reloads;
    std::this_thread::sleep_for(milliseconds(200));
  }
  json s = ControlExchange(daemon->control_socket(), "{\"command\":\"stats\"}\n");
  EXPECT_GE(s["reloads"]["count"].get<int>(), 8);  // one at least every 650 ms
  EXPECT_GE(s["snapshot"]["writes"].get<int>(), 2);  // at 2 s and 4 s
  std::string log = daemon->log();
  int summaries = 0;
  for (size_t at = log.find("summary:"); at != std::string::npos; at = log.find("summary:", at + 1)) ++summaries;
  EXPECT_GE(summaries, 4);  // at 1, 2, 3, 4 and 5 s
  EXPECT_EQ(daemon->Stop(), 0) << daemon->log();
}

}  // namespace
}  // namespace nodedns::testing
