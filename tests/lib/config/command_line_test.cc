#include "lib/config/command_line.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/daemon_process.h"

namespace nodedns::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::StatusOr<CommandLine> Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "nodedns");
  return ParseCommandLine(static_cast<int>(args.size()), args.data());
}

// The first error of parsing and building, or "ok".
std::string Error(std::vector<const char*> args) {
  auto cl = Parse(std::move(args));
  if (!cl.ok()) return std::string(cl.status().message());
  auto c = BuildConfig(*cl);
  return c.ok() ? std::string("ok") : std::string(c.status().message());
}

TEST(CommandLineTest, Defaults) {
  auto cl = Parse({});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_FALSE(cl->config_path);
  EXPECT_FALSE(cl->check_config_path);
  EXPECT_TRUE(cl->listen.empty());
  EXPECT_TRUE(cl->upstream.empty());
  EXPECT_FALSE(cl->log_level);
  EXPECT_FALSE(cl->workers);
  EXPECT_FALSE(cl->ready_file);
  EXPECT_FALSE(cl->control_socket);
  EXPECT_FALSE(cl->metrics_listen);
  EXPECT_FALSE(cl->snapshot);
  EXPECT_FALSE(cl->log_format);
  EXPECT_FALSE(cl->user);
  EXPECT_EQ(cl->resolv_conf, "/etc/resolv.conf");
  EXPECT_FALSE(cl->setup_interface);
  EXPECT_FALSE(cl->takeover);
  EXPECT_FALSE(cl->help);
  EXPECT_FALSE(cl->version);
}

TEST(CommandLineTest, EveryValueFlagInBothSpellings) {
  struct Case {
    const char* flag;
    std::optional<std::string> CommandLine::*field;
  };
  const Case cases[] = {
      {"--config", &CommandLine::config_path},       {"--check-config", &CommandLine::check_config_path},
      {"--log-level", &CommandLine::log_level},      {"--ready-file", &CommandLine::ready_file},
      {"--control-socket", &CommandLine::control_socket}, {"--metrics-listen", &CommandLine::metrics_listen},
      {"--snapshot", &CommandLine::snapshot},        {"--log-format", &CommandLine::log_format},
      {"--user", &CommandLine::user},                {"--health-listen", &CommandLine::health_listen},
  };
  for (const Case& c : cases) {
    auto separate = Parse({c.flag, "v1"});
    ASSERT_TRUE(separate.ok()) << c.flag << ": " << separate.status();
    EXPECT_EQ((*separate).*(c.field), "v1") << c.flag;
    std::string joined = std::string(c.flag) + "=v2=x";  // only the first '=' separates
    auto with_equals = Parse({joined.c_str()});
    ASSERT_TRUE(with_equals.ok()) << joined << ": " << with_equals.status();
    EXPECT_EQ((*with_equals).*(c.field), "v2=x") << joined;
    // "--flag=" is an empty value ("" turns the control socket and the
    // metrics endpoint off), not a missing one.
    std::string empty = std::string(c.flag) + "=";
    auto with_empty = Parse({empty.c_str()});
    ASSERT_TRUE(with_empty.ok()) << empty << ": " << with_empty.status();
    EXPECT_EQ((*with_empty).*(c.field), "") << empty;
    // The last occurrence wins.
    auto twice = Parse({c.flag, "first", c.flag, "second"});
    ASSERT_TRUE(twice.ok());
    EXPECT_EQ((*twice).*(c.field), "second") << c.flag;
  }
  auto resolv = Parse({"--resolv-conf", "/tmp/a", "--resolv-conf=/tmp/b"});
  ASSERT_TRUE(resolv.ok());
  EXPECT_EQ(resolv->resolv_conf, "/tmp/b");
}

TEST(CommandLineTest, ListenAndUpstreamAccumulate) {
  auto cl = Parse({"--listen", "127.0.0.1:1", "--upstream=127.0.0.2", "--listen=[::1]:2", "--upstream",
                   "127.0.0.3:5353"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_THAT(cl->listen, ElementsAre("127.0.0.1:1", "[::1]:2"));
  EXPECT_THAT(cl->upstream, ElementsAre("127.0.0.2", "127.0.0.3:5353"));
}

TEST(CommandLineTest, BooleanFlags) {
  auto cl = Parse({"--setup-interface", "--takeover", "--version"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_TRUE(cl->setup_interface);
  EXPECT_TRUE(cl->takeover);
  EXPECT_TRUE(cl->version);
  EXPECT_FALSE(cl->help);
  EXPECT_TRUE(Parse({"--help"})->help);
  EXPECT_TRUE(Parse({"-h"})->help);
  EXPECT_FALSE(cl->print_default_config);
  EXPECT_TRUE(Parse({"--print-default-config"})->print_default_config);
  // A boolean flag takes no value: the next argument is not swallowed.
  auto next = Parse({"--takeover", "--listen", "127.0.0.1:1"});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_TRUE(next->takeover);
  EXPECT_THAT(next->listen, ElementsAre("127.0.0.1:1"));
}

// "--takeover=false" must not turn the takeover on (nor "--help=no" ask for
// help): a value given to a flag that takes none is an error.
TEST(CommandLineTest, BooleanFlagWithValueIsRefused) {
  for (const char* arg : {"--takeover=false", "--setup-interface=0", "--help=no", "--version=1"}) {
    auto cl = Parse({arg});
    ASSERT_FALSE(cl.ok()) << arg;
    EXPECT_THAT(cl.status().message(), HasSubstr("takes no value")) << arg;
  }
}

TEST(CommandLineTest, Workers) {
  EXPECT_EQ(*Parse({"--workers", "1"})->workers, 1);
  EXPECT_EQ(*Parse({"--workers=64"})->workers, 64);
  for (const char* bad : {"0", "65", "-1", "2x", "", " 2", "0x4", "99999999999"}) {
    auto cl = Parse({"--workers", bad});
    ASSERT_FALSE(cl.ok()) << bad;
    EXPECT_EQ(cl.status().message(), "--workers: expected a number from 1 to 64, got '" + std::string(bad) + "'");
  }
}

TEST(CommandLineTest, UnknownAndMissing) {
  EXPECT_EQ(Error({"--bogus"}), "unknown flag '--bogus' (see --help)");
  EXPECT_EQ(Error({"--bogus=1"}), "unknown flag '--bogus' (see --help)");
  EXPECT_EQ(Error({"-x"}), "unexpected argument '-x' (see --help)");
  EXPECT_EQ(Error({"stray"}), "unexpected argument 'stray' (see --help)");
  EXPECT_EQ(Error({"-"}), "unexpected argument '-' (see --help)");
  EXPECT_EQ(Error({"--"}), "unknown flag '--' (see --help)");
  // Flags are case-sensitive and need both dashes.
  EXPECT_EQ(Error({"--Listen", "127.0.0.1:1"}), "unknown flag '--Listen' (see --help)");
  for (const char* flag : {"--listen", "--upstream", "--resolv-conf", "--workers", "--config", "--check-config",
                           "--log-level", "--ready-file", "--control-socket", "--metrics-listen", "--snapshot",
                           "--log-format", "--user", "--health-listen"}) {
    EXPECT_EQ(Error({flag}), "flag " + std::string(flag) + " needs a value") << flag;
  }
  // The error names the first problem: parsing stops there.
  EXPECT_EQ(Error({"--bogus", "--workers", "0"}), "unknown flag '--bogus' (see --help)");
  // As implemented, the argument after a value flag is its value, even if it
  // looks like a flag.
  auto cl = Parse({"--ready-file", "--takeover"});
  ASSERT_TRUE(cl.ok());
  EXPECT_EQ(*cl->ready_file, "--takeover");
  EXPECT_FALSE(cl->takeover);
}

TEST(CommandLineTest, ParsesAndOverrides) {
  const char* argv[] = {"nodedns", "--listen", "127.0.0.1:5301", "--listen=[::1]:5301", "--upstream",
                        "127.0.0.9:53", "--log-level", "warn", "--workers", "2", "--ready-file", "/tmp/r"};
  auto cl = ParseCommandLine(12, argv);
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->listen.size(), 2u);
  auto c = BuildConfig(*cl);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->listen.size(), 2u);
  EXPECT_EQ(c->listen[1].ToString(), "[::1]:5301");
  ASSERT_EQ(c->zones.size(), 1u);
  EXPECT_EQ(c->zones[0].servers[0].ToString(), "127.0.0.9:53");
  EXPECT_FALSE(c->zones[0].use_resolv_conf);
  EXPECT_EQ(c->log_level, "warn");
  EXPECT_EQ(c->workers, 2);
  EXPECT_EQ(*cl->ready_file, "/tmp/r");
}

TEST(CommandLineTest, FlagsOverrideFile) {
  testing::TempDir dir;
  std::string path = dir.Write("c.toml", "[server]\nlisten=[\"127.0.0.1:1\"]\n[[zone]]\nname=\".\"\n"
                                         "servers=[\"127.0.0.3\"]\nmax_stale=60\n[[zone]]\nname=\"cluster.local\"\n"
                                         "servers=[\"127.0.0.4\"]\n");
  std::string cfg = "--config=" + path;
  const char* argv[] = {"nodedns", cfg.c_str(), "--upstream", "127.0.0.5:5353", "--upstream", "127.0.0.6"};
  auto c = BuildConfig(*ParseCommandLine(6, argv));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen[0].ToString(), "127.0.0.1:1");
  ASSERT_EQ(c->zones.size(), 2u);
  // "." gets the flags' servers (default port 53) and keeps its other settings.
  ASSERT_EQ(c->zones[0].servers.size(), 2u);
  EXPECT_EQ(c->zones[0].servers[0].ToString(), "127.0.0.5:5353");
  EXPECT_EQ(c->zones[0].servers[1].ToString(), "127.0.0.6:53");
  EXPECT_EQ(c->zones[0].max_stale, absl::Seconds(60));
  EXPECT_EQ(c->zones[1].servers[0].ToString(), "127.0.0.4:53");  // others kept
}

TEST(CommandLineTest, UpstreamAddsARootZoneWhenTheFileHasNone) {
  testing::TempDir dir;
  std::string path = dir.Write("c.toml", "[[zone]]\nname=\"cluster.local\"\nservers=[\"127.0.0.4\"]\n");
  std::string cfg = "--config=" + path;
  auto c = BuildConfig(*Parse({cfg.c_str(), "--upstream", "127.0.0.5"}));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->zones.size(), 2u);
  EXPECT_EQ(c->zones[1].name, ".");
  ASSERT_EQ(c->zones[1].servers.size(), 1u);
  EXPECT_EQ(c->zones[1].servers[0].ToString(), "127.0.0.5:53");
}

TEST(CommandLineTest, ListenReplacesTheWholeList) {
  testing::TempDir dir;
  std::string path = dir.Write("c.toml", "[server]\nlisten=[\"127.0.0.1:1\", \"127.0.0.2:2\"]\n[[zone]]\n"
                                         "name=\".\"\nservers=[\"127.0.0.3\"]\n");
  std::string cfg = "--config=" + path;
  auto c = BuildConfig(*Parse({cfg.c_str(), "--listen", "127.0.0.9:9"}));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->listen.size(), 1u);
  EXPECT_EQ(c->listen[0].ToString(), "127.0.0.9:9");
  // --listen needs the port (no default, unlike --upstream).
  EXPECT_EQ(Error({"--listen", "127.0.0.9", "--upstream", "127.0.0.1"}),
            "--listen: missing port in address '127.0.0.9' (expected ADDR:PORT or [V6ADDR]:PORT)");
}

TEST(CommandLineTest, OperationalOverrides) {
  auto c = BuildConfig(*Parse({"--upstream", "127.0.0.1", "--log-format", "json", "--control-socket=",
                               "--metrics-listen", "127.0.0.1:0", "--snapshot", "/tmp/snap", "--setup-interface"}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->log_format, "json");
  EXPECT_EQ(c->control_socket, "");
  ASSERT_TRUE(c->metrics_listen);
  EXPECT_EQ(c->metrics_listen->ToString(), "127.0.0.1:0");
  EXPECT_EQ(c->snapshot_path, "/tmp/snap");
  EXPECT_TRUE(c->interface_setup);
  // "" turns the metrics endpoint off.
  auto off = BuildConfig(*Parse({"--upstream", "127.0.0.1", "--metrics-listen="}));
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->metrics_listen);
  // Without the flags the defaults stay.
  auto plain = BuildConfig(*Parse({"--upstream", "127.0.0.1"}));
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->log_format, "text");
  EXPECT_EQ(plain->control_socket, "/run/nodedns/control.sock");
  ASSERT_TRUE(plain->metrics_listen);
  EXPECT_EQ(plain->metrics_listen->ToString(), "127.0.0.1:9253");
  EXPECT_FALSE(plain->interface_setup);
}

TEST(CommandLineTest, SetupInterfaceFlagOnlyTurnsItOn) {
  testing::TempDir dir;
  std::string path = dir.Write("c.toml", "[interface]\nsetup=true\n[[zone]]\nname=\".\"\nservers=[\"127.0.0.3\"]\n");
  std::string cfg = "--config=" + path;
  auto c = BuildConfig(*Parse({cfg.c_str()}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->interface_setup);  // no flag: the file's value
}

TEST(CommandLineTest, ValueErrorsNameTheFlag) {
  EXPECT_EQ(Error({"--upstream", "1.2.3"}), "--upstream: invalid IP address '1.2.3' in '1.2.3'");
  EXPECT_EQ(Error({"--log-level", "loud", "--upstream", "127.0.0.1"}),
            "--log-level: must be one of trace, debug, info, warn, error, critical, off");
  EXPECT_EQ(Error({"--log-format", "xml", "--upstream", "127.0.0.1"}), "--log-format: must be text or json");
  EXPECT_THAT(Error({"--metrics-listen", "127.0.0.1", "--upstream", "127.0.0.1"}),
              HasSubstr("--metrics-listen: missing port"));
  EXPECT_EQ(Error({"--upstream", "127.0.0.1", "--log-level", "debug"}), "ok");
}

TEST(CommandLineTest, ResolvConfFlagIsReadForResolvConfZones) {
  testing::TempDir dir;
  std::string resolv = dir.Write("resolv.conf", "nameserver 127.0.0.53\nnameserver ::1\n");
  std::string flag = "--resolv-conf=" + resolv;
  // The embedded default forwards "." to "resolv.conf".
  auto c = BuildConfig(*Parse({flag.c_str()}));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->zones.size(), 1u);
  ASSERT_EQ(c->zones[0].servers.size(), 2u);
  EXPECT_EQ(c->zones[0].servers[0].ToString(), "127.0.0.53:53");
  EXPECT_EQ(c->zones[0].servers[1].ToString(), "[::1]:53");
  EXPECT_FALSE(c->zones[0].use_resolv_conf);
  // --upstream replaces "resolv.conf": the file is not read at all.
  std::string missing = "--resolv-conf=" + dir.path() + "/missing";
  EXPECT_EQ(Error({missing.c_str(), "--upstream", "127.0.0.1"}), "ok");
  EXPECT_NE(Error({missing.c_str()}), "ok");
}

TEST(CommandLineTest, ConfigFileErrorsNameTheFile) {
  testing::TempDir dir;
  std::string missing = "--config=" + dir.path() + "/none.toml";
  EXPECT_THAT(Error({missing.c_str()}), HasSubstr("none.toml"));
  std::string bad = dir.Write("bad.toml", "[server]\nworkers = \"many\"\n");
  std::string flag = "--config=" + bad;
  EXPECT_THAT(Error({flag.c_str(), "--upstream", "127.0.0.1"}), HasSubstr("bad.toml:2"));
  // BuildConfigFromText names the source it is given.
  auto c = BuildConfigFromText(*Parse({}), "[server]\nworkers = 0\n", "inline.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("inline.toml:2"));
}

TEST(CommandLineTest, ApplyOverridesValidatesTheResult) {
  Config c = DefaultConfig();
  c.zones.clear();
  EXPECT_THAT(ApplyOverrides(*Parse({}), &c).message(), HasSubstr("no [[zone]]"));
  // The flags can supply what the file lacks.
  EXPECT_TRUE(ApplyOverrides(*Parse({"--upstream", "127.0.0.1"}), &c).ok());
  ASSERT_EQ(c.zones.size(), 1u);
  EXPECT_EQ(c.zones[0].name, ".");
}

TEST(CommandLineTest, UsageListsEveryFlag) {
  std::string usage = Usage();
  for (const char* flag : {"--config", "--check-config", "--listen", "--upstream", "--workers", "--log-level",
                           "--log-format", "--control-socket", "--metrics-listen", "--snapshot", "--setup-interface",
                           "--takeover", "--user", "--ready-file", "--resolv-conf", "--version", "--help"}) {
    EXPECT_THAT(usage, HasSubstr(flag));
    // Every flag the usage names parses (with a value where it takes one).
    auto bare = Parse({flag});
    auto with_value = Parse({flag, "1"});
    EXPECT_TRUE(bare.ok() || with_value.ok()) << flag;
  }
}

}  // namespace
}  // namespace nodedns::config
