#include "lib/config/config.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/daemon_process.h"

namespace nodedns::config {
namespace {

using ::testing::HasSubstr;

absl::Status ParseError(const std::string& text) {
  auto c = ParseConfig(text, "test.toml");
  EXPECT_FALSE(c.ok()) << text;
  return c.status();
}

TEST(ConfigTest, EmbeddedDefaultIsValid) {
  Config c = DefaultConfig();
  ASSERT_EQ(c.listen.size(), 1u);
  EXPECT_EQ(c.listen[0].ToString(), "127.0.0.1:5300");
  ASSERT_EQ(c.zones.size(), 1u);
  EXPECT_EQ(c.zones[0].name, ".");
  EXPECT_TRUE(c.zones[0].use_resolv_conf);
  EXPECT_EQ(c.cache.max_entries, 100000u);
  EXPECT_EQ(c.resolver.image.max_ttl, 86400u);
  EXPECT_EQ(c.transport.timeout, absl::Seconds(1));
  EXPECT_EQ(c.resolver.max_udp_size, 1232);
}

// Defaults live with their components (upstream/options.h,
// resolver/options.h, cache.h, Config); default.toml, which operators read
// and the binary embeds, must state the same values.
TEST(ConfigTest, TheEmbeddedDefaultFileStatesTheComponentsDefaults) {
  Config file = DefaultConfig();
  Config structs;
  EXPECT_TRUE(file.cache == structs.cache);
  EXPECT_TRUE(file.transport == structs.transport);
  EXPECT_TRUE(file.upstream == structs.upstream);
  EXPECT_TRUE(file.resolver == structs.resolver);
  EXPECT_TRUE(file.resolver.image == structs.resolver.image);
  EXPECT_EQ(file.upstream.max_qps, structs.upstream.max_qps);
  EXPECT_EQ(file.upstream.limiter.tolerance, structs.upstream.limiter.tolerance);
  EXPECT_EQ(file.resolver.prefetch_threshold, structs.resolver.prefetch_threshold);
  EXPECT_EQ(file.workers, structs.workers);
  EXPECT_EQ(file.tcp, structs.tcp);
  EXPECT_EQ(file.handover_grace, structs.handover_grace);
  EXPECT_EQ(file.log_level, structs.log_level);
  EXPECT_EQ(file.log_format, structs.log_format);
  EXPECT_EQ(file.log_summary_interval, structs.log_summary_interval);
  EXPECT_EQ(file.snapshot_interval, structs.snapshot_interval);
  EXPECT_EQ(file.control_socket_mode, structs.control_socket_mode);
  ASSERT_EQ(file.zones.size(), 1u);
  ZoneConfig zone;
  zone.name = file.zones[0].name;
  zone.use_resolv_conf = true;
  EXPECT_TRUE(file.zones[0] == zone) << "the default [[zone]]'s keys differ from ZoneOptions' defaults";
  // And a changed default is noticed (the comparison is not vacuous).
  structs.upstream.max_qps = 2000;
  EXPECT_FALSE(file.upstream == structs.upstream);
}

TEST(ConfigTest, ParsesEverySection) {
  auto c = ParseConfig(R"(
[server]
listen = ["127.0.0.1:53", "[::1]:53"]
workers = 2
tcp_workers = 3
max_udp_size = 1400
tcp_idle_timeout_ms = 5000
max_tcp_connections = 10
max_tcp_pipeline = 8
[cache]
max_entries = 5000
max_bytes = 1048576
shards = 4
min_ttl = 5
max_ttl = 3600
negative_max_ttl = 300
[upstream]
timeout_ms = 250
attempts = 3
max_pending = 100
max_waiters = 50
limit_floor_percent = 10
[[zone]]
name = "Cluster.Local"
servers = ["10.96.0.10"]
transport = "tcp"
filter_aaaa = true
[[zone]]
name = "."
servers = ["127.0.0.1:5353", "[::1]:5353"]
[log]
level = "debug"
)", "t.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen.size(), 2u);
  EXPECT_EQ(c->listen[1].ToString(), "[::1]:53");
  EXPECT_EQ(c->workers, 2);
  EXPECT_EQ(c->tcp_workers, 3);
  EXPECT_EQ(c->tcp.idle_timeout, absl::Seconds(5));
  EXPECT_EQ(c->cache.shards, 4u);
  EXPECT_EQ(c->resolver.image.min_ttl, 5u);
  EXPECT_EQ(c->transport.timeout, absl::Milliseconds(250));
  EXPECT_DOUBLE_EQ(c->upstream.limiter.floor, 0.1);
  ASSERT_EQ(c->zones.size(), 2u);
  EXPECT_EQ(c->zones[0].name, "cluster.local.");
  EXPECT_EQ(c->zones[0].servers[0].ToString(), "10.96.0.10:53");  // default port
  EXPECT_FALSE(c->zones[1].use_resolv_conf);
  EXPECT_EQ(c->zones[0].transport, upstream::Protocol::kTcp);
  EXPECT_TRUE(c->zones[0].filter_aaaa);
  EXPECT_EQ(c->zones[1].transport, upstream::Protocol::kPreferUdp);  // the defaults
  EXPECT_FALSE(c->zones[1].filter_aaaa);
  EXPECT_EQ(c->log_level, "debug");
}

TEST(ConfigTest, SyntaxErrorHasFileAndLine) {
  absl::Status s = ParseError("[server]\nworkers = 1\nlisten = [\"127.0.0.1:53\"\n");
  EXPECT_THAT(std::string(s.message()), HasSubstr("test.toml:"));
}

TEST(ConfigTest, SemanticErrorsHaveFileLineAndReason) {
  EXPECT_EQ(std::string(ParseError("[server]\n\nworkers = 0\n").message()),
            "test.toml:3: 'server.workers' must be between 1 and 64, got 0");
  EXPECT_EQ(std::string(ParseError("[cache]\nmax_entries = \"many\"\n").message()),
            "test.toml:2: 'cache.max_entries' must be an integer");
  EXPECT_EQ(std::string(ParseError("[server]\nlisten = [\"127.0.0.1\"]\n").message()),
            "test.toml:2: 'server.listen[]': missing port in address '127.0.0.1' (expected ADDR:PORT or [V6ADDR]:PORT)");
  EXPECT_EQ(std::string(ParseError("[sever]\nworkers = 1\n").message()), "test.toml:1: unknown key 'sever'");
  EXPECT_EQ(std::string(ParseError("[server]\nworker = 1\n").message()), "test.toml:2: unknown key 'server.worker'");
  EXPECT_EQ(std::string(ParseError("[log]\nlevel = \"loud\"\n").message()),
            "test.toml:2: 'log.level' must be one of trace, debug, info, warn, error, critical, off");
  EXPECT_THAT(std::string(ParseError("[[zone]]\nname = \"a\"\nservers = [\"300.1.1.1\"]\n").message()),
              HasSubstr("test.toml:3: 'zone.servers[]': invalid IP address '300.1.1.1'"));
  EXPECT_THAT(std::string(ParseError("[[zone]]\nservers = [\"1.1.1.1\"]\n").message()),
              HasSubstr("[[zone]] without 'name'"));
  EXPECT_THAT(std::string(ParseError("[[zone]]\nname=\".\"\nservers=[\"1.1.1.1\"]\n[[zone]]\nname=\".\"\n"
                                     "servers=[\"1.1.1.1\"]\n").message()),
              HasSubstr("configured twice"));
  EXPECT_EQ(std::string(ParseError("[[zone]]\nname = \".\"\nservers = [\"1.1.1.1\"]\ntransport = \"quic\"\n").message()),
            "test.toml:4: 'zone.transport' must be \"prefer_udp\", \"udp\" or \"tcp\"");
  EXPECT_EQ(std::string(ParseError("[[zone]]\nname = \".\"\nservers = [\"1.1.1.1\"]\nfilter_aaaa = \"yes\"\n").message()),
            "test.toml:4: 'zone.filter_aaaa' must be true or false");
  EXPECT_EQ(std::string(ParseError("[health]\nlisten = 5\n").message()), "test.toml:2: 'health.listen' must be a string");
  EXPECT_THAT(std::string(ParseError("[health]\nlisten = \"1.2.3.4\"\n").message()),
              HasSubstr("test.toml:2: 'health.listen': missing port"));
  EXPECT_THAT(std::string(ParseError("[cache]\nmin_ttl = 100\nmax_ttl = 10\n").message()),
              HasSubstr("min_ttl exceeds"));
}

TEST(ConfigTest, PinnedNames) {
  auto z = [](const std::string& pin) {
    return "[[zone]]\nname = \"cluster.local\"\nservers = [\"1.1.1.1\"]\npin = " + pin + "\n";
  };
  auto ok = ParseConfig(z("[\"Kubernetes.Default.svc.cluster.local\", \"cluster.local\"]"), "test.toml");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->zones.back().pin,
            (std::vector<std::string>{"kubernetes.default.svc.cluster.local.", "cluster.local."}));
  EXPECT_EQ(std::string(ParseError(z("\"one.cluster.local\"")).message()),
            "test.toml:4: 'zone.pin' must be an array of names");
  EXPECT_EQ(std::string(ParseError(z("[5]")).message()), "test.toml:4: 'zone.pin[]' must be a string");
  EXPECT_THAT(std::string(ParseError(z("[\"a..cluster.local\"]")).message()), HasSubstr("test.toml:4:"));
  EXPECT_THAT(std::string(ParseError(z("[\"registry.example\"]")).message()),
              HasSubstr("pinned name 'registry.example.' is not under it"));
  EXPECT_THAT(std::string(ParseError(z("[\"xcluster.local\"]")).message()), HasSubstr("is not under it"));
  EXPECT_THAT(std::string(ParseError(z("[\"a.cluster.local\", \"A.cluster.local\"]")).message()),
              HasSubstr("listed twice"));
  std::string many = "[";
  for (int i = 0; i < 1001; ++i) many += (i ? ", \"n" : "\"n") + std::to_string(i) + ".cluster.local\"";
  EXPECT_THAT(std::string(ParseError(z(many + "]")).message()), HasSubstr("more than 1000 pinned names"));
  EXPECT_EQ(std::string(ParseError("[cache]\npin_refresh_min_s = 0\n").message()).find("test.toml:2:"), 0u);
}

TEST(ConfigTest, LoadFileErrors) {
  testing::TempDir dir;
  EXPECT_TRUE(absl::IsNotFound(LoadConfigFile(dir.path() + "/missing.toml").status()));
  std::string path = dir.Write("bad.toml", "[server]\nmax_udp_size = 99999\n");
  auto c = LoadConfigFile(path);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(std::string(c.status().message()),
            path + ":2: 'server.max_udp_size' must be between 512 and 4096, got 99999");
}

TEST(ConfigTest, ResolvConf) {
  testing::TempDir dir;
  std::string rc = dir.Write("resolv.conf",
                             "# comment\nsearch example\nnameserver 127.0.0.2\nnameserver ::1\n"
                             "nameserver fe80::1%eth0\nnameserver 127.0.0.1\noptions ndots:5\n");
  auto servers = ReadResolvConf(rc);
  ASSERT_TRUE(servers.ok());
  ASSERT_EQ(servers->size(), 3u);
  EXPECT_EQ((*servers)[0].ToString(), "127.0.0.2:53");
  EXPECT_EQ((*servers)[1].ToString(), "[::1]:53");

  Config c = DefaultConfig();
  c.listen = {*SocketAddress::Parse("127.0.0.1:53")};
  ASSERT_TRUE(ResolveUpstreams(&c, rc).ok());
  // 127.0.0.1:53 is ourselves: left out to avoid a forwarding loop.
  ASSERT_EQ(c.zones[0].servers.size(), 2u);
  EXPECT_EQ(c.zones[0].servers[0].ToString(), "127.0.0.2:53");

  Config empty = DefaultConfig();
  std::string none = dir.Write("none.conf", "search example\n");
  EXPECT_FALSE(ResolveUpstreams(&empty, none).ok());
}

}  // namespace
}  // namespace nodedns::config

namespace nodedns::config {
namespace {

TEST(KeepRestartOnlyTest, RevertsWhatNeedsARestartAndNamesIt) {
  Config running = DefaultConfig();
  Config next = running;
  next.listen = {*SocketAddress::Parse("127.0.0.1:5353")};
  next.tcp.max_pipeline = 8;
  next.tcp_workers = 2;
  next.cache.shards = 4;
  next.metrics_listen.reset();
  next.upstream.max_qps = 17;  // reloadable
  auto notes = KeepRestartOnly(running, &next);
  EXPECT_EQ(notes, (std::vector<std::string>{
                       "server.listen changed: needs a restart; keeping the running value",
                       "server.workers/tcp_workers changed: needs a restart; keeping the running value",
                       "server.tcp_idle_timeout_ms/max_tcp_connections/max_tcp_pipeline/tcp_frame_timeout_ms/"
                       "max_tcp_write_queue/tcp_memory_budget changed: needs a restart; keeping the running value",
                       "cache.max_entries/max_bytes/shards changed: needs a restart; keeping the running value",
                       "metrics.listen changed: needs a restart; keeping the running value"}));
  EXPECT_EQ(next.listen, running.listen);
  EXPECT_EQ(next.tcp.max_pipeline, running.tcp.max_pipeline);
  EXPECT_EQ(next.tcp_workers, running.tcp_workers);
  EXPECT_EQ(next.cache, running.cache);
  EXPECT_EQ(next.metrics_listen, running.metrics_listen);
  EXPECT_EQ(next.upstream.max_qps, 17);
  EXPECT_TRUE(KeepRestartOnly(running, &next).empty());
}

}  // namespace
}  // namespace nodedns::config
