#include "lib/config/text_check.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/config/command_line.h"
#include "lib/config/config.h"
#include "tests/support/daemon_process.h"

namespace nodedns::config {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string Error(const std::string& text, bool whole_file = true) {
  absl::Status st = CheckConfigText(text, "t.toml", whole_file);
  EXPECT_FALSE(st.ok()) << text.substr(0, 100);
  return std::string(st.message());
}

std::string Repeat(const std::string& unit, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += unit;
  return out;
}

TEST(CheckConfigTextTest, AcceptsOrdinaryFiles) {
  EXPECT_TRUE(CheckConfigText("[server]\nworkers = 2\n", "t.toml", true).ok());
  EXPECT_TRUE(CheckConfigText("[server]\n", "t.toml", true).ok());
  // Dots, brackets and hashes inside strings and comments do not count.
  std::string many_dots = "[control]\nsocket = \"" + Repeat(".", 500) + "\"\n# " + Repeat("[.", 500) + "\n";
  EXPECT_TRUE(CheckConfigText(many_dots, "t.toml", true).ok());
  EXPECT_TRUE(CheckConfigText("a = '''" + Repeat("[{.", 100) + "\n" + Repeat("[{.", 100) + "'''\n", "t.toml", true)
                  .ok());
  EXPECT_TRUE(CheckConfigText("a = \"\"\"x\\\"\"\"" + Repeat("[", 100) + "\"\"\"\n", "t.toml", true).ok());
  EXPECT_TRUE(CheckConfigText("a = \"\\\\\"\n" + Repeat("b.", 60) + "c = 1\n", "t.toml", true).ok());
}

TEST(CheckConfigTextTest, DeepNestingIsRefusedBeforeParsing) {
  // What overflowed toml++'s stack: 100,000 levels of table header or key.
  EXPECT_EQ(Error("[" + Repeat("a.", 100000) + "a]\n"),
            "t.toml:1: more than 64 dots outside strings on one line (a key or table nested too deeply)");
  EXPECT_THAT(Error("x = 1\n" + Repeat("a.", 100000) + "a = 1\n"), StartsWith("t.toml:2: more than 64 dots"));
  EXPECT_EQ(Error("x = " + Repeat("[", 100000) + "\n"), "t.toml:1: nested more than 32 levels deep");
  EXPECT_EQ(Error("x = [\n" + Repeat("{a=[\n", 50)), "t.toml:17: nested more than 32 levels deep");
  EXPECT_TRUE(CheckConfigText("x = " + Repeat("[", 32) + Repeat("]", 32) + "\n", "t.toml", true).ok());
}

TEST(CheckConfigTextTest, SizeNulAndEmptiness) {
  EXPECT_EQ(Error(std::string(kMaxConfigBytes + 1, '#')),
            "t.toml: the file has 1048577 bytes; a configuration may have at most 1048576");
  EXPECT_EQ(Error(std::string("[server]\nworkers = 1\0\n", 22)),
            "t.toml:2: a NUL byte: the file is damaged or was not written as text");
  for (const char* empty : {"", "\n\n", "   \t\r\n", "# only a comment\n# and another\n"}) {
    std::string m = Error(empty);
    EXPECT_THAT(m, StartsWith("t.toml: the file is empty")) << empty;
    EXPECT_THAT(m, HasSubstr("an empty table such as \"[server]\""));
  }
  EXPECT_EQ(Error("[server]\nworkers = 2"), "t.toml:2: the last line has no newline at its end: the file looks "
                                            "truncated (caught while being written?); refusing it");
  EXPECT_TRUE(CheckConfigText("[server]\nworkers = 2", "t.toml", /*whole_file=*/false).ok());
}

TEST(ConfigLimitsTest, ZonesAreCappedAndDuplicatesFoundWithBothLines) {
  auto zones = [](size_t n) {
    std::string t;
    for (size_t i = 0; i < n; ++i) t += "[[zone]]\nname = \"z" + std::to_string(i) + ".example\"\nservers = [\"192.0.2.1\"]\n";
    return t;
  };
  auto ok = ParseConfig(zones(kMaxZones), "t.toml");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->zones.size(), kMaxZones);
  auto over = ParseConfig(zones(kMaxZones + 1), "t.toml");
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(std::string(over.status().message()),
            "t.toml:769: more than 256 [[zone]] tables (each costs memory and set-up time on every worker)");
  auto dup = ParseConfig("[[zone]]\nname = \"a.example\"\nservers = [\"192.0.2.1\"]\n"
                         "[[zone]]\nname = \"A.Example.\"\nservers = [\"192.0.2.2\"]\n",
                         "t.toml");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(std::string(dup.status().message()), "t.toml:4: zone 'a.example.' is configured twice (first at line 1)");
}

TEST(ConfigLimitsTest, FilesAreReadOnlyUpToTheLimit) {
  testing::TempDir dir;
  std::string big = dir.Write("big.toml", "[server]\n" + std::string(10 * 1024 * 1024, '#') + "\n");
  auto c = LoadConfigFile(big);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(std::string(c.status().message()),
            big + ": the file is larger than 1048576 bytes, the most a configuration may have");
  std::string empty = dir.Write("empty.toml", "");
  EXPECT_THAT(std::string(LoadConfigFile(empty).status().message()), StartsWith(empty + ": the file is empty"));
}

TEST(CheckConfigSemanticsTest, TheSameChecksAsStartUp) {
  // --check-config goes through BuildConfig: a "resolv.conf" zone needs a
  // usable nameserver there, exactly as at start-up.
  testing::TempDir dir;
  std::string cfg = dir.Write("c.toml", "[[zone]]\nname = \".\"\nservers = [\"resolv.conf\"]\n");
  CommandLine cl;
  cl.config_path = cfg;
  cl.resolv_conf = dir.Write("resolv.conf", "search example\n");
  auto c = BuildConfig(cl);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("lists no usable nameserver"));
  cl.resolv_conf = dir.Write("resolv2.conf", "nameserver 192.0.2.53\n");
  EXPECT_TRUE(BuildConfig(cl).ok());
  std::string out;
  EXPECT_EQ(testing::RunProgram({testing::NodednsBinary(), "--check-config", cfg, "--resolv-conf",
                                 dir.path() + "/resolv.conf"},
                                &out),
            1);
  EXPECT_THAT(out, HasSubstr("lists no usable nameserver"));
  EXPECT_EQ(testing::RunProgram({testing::NodednsBinary(), "--check-config", cfg, "--resolv-conf",
                                 dir.path() + "/resolv2.conf"},
                                &out),
            0)
      << out;
}

}  // namespace
}  // namespace nodedns::config
