#include "lib/app/logging.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/log_capture.h"

namespace nodedns::app {
namespace {

using ::testing::ElementsAre;
using ::testing::MatchesRegex;

TEST(LoggingTest, JsonIsOneObjectPerLine) {
  nodedns::testing::LogCapture log;
  ApplyLogSettings("json", "warn");
  spdlog::info("not at this level");
  spdlog::warn("upstream {} \"down\"", "127.0.0.1:53");
  spdlog::error("line\nbreak");
  auto lines = log.lines();
  ASSERT_EQ(lines.size(), 2u) << log.text();
  auto first = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(first["level"], "warning");
  EXPECT_EQ(first["msg"], "upstream 127.0.0.1:53 \"down\"");
  EXPECT_THAT(first["time"].get<std::string>(),
              MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"));
  EXPECT_EQ(first.size(), 3u);
  // A newline in a message stays inside its JSON string.
  auto second = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(second["level"], "error");
  EXPECT_EQ(second["msg"], "line\nbreak");
}

TEST(LoggingTest, JsonSurvivesInvalidUtf8) {
  nodedns::testing::LogCapture log;
  ApplyLogSettings("json", "info");
  // A query name with octets that are not UTF-8 must not throw.
  EXPECT_NO_THROW(spdlog::info(std::string("name=caf\xe9.example")));
  auto lines = log.lines();
  ASSERT_EQ(lines.size(), 1u);
  auto j = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(j["msg"], "name=caf\xEF\xBF\xBD.example");  // U+FFFD
}

TEST(LoggingTest, TextHasTimeLevelAndMessage) {
  nodedns::testing::LogCapture log;
  ApplyLogSettings("text", "debug");
  spdlog::trace("not at this level");
  spdlog::debug("probe sent");
  auto lines = log.lines();
  ASSERT_EQ(lines.size(), 1u) << log.text();
  EXPECT_THAT(lines[0],
              MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3} debug probe sent"));
}

TEST(LoggingTest, LevelsApplyAtOnceAndOffSilences) {
  nodedns::testing::LogCapture log;
  ApplyLogSettings("text", "off");
  spdlog::critical("silenced");
  EXPECT_EQ(log.text(), "");
  ApplyLogSettings("text", "error");
  spdlog::warn("below");
  spdlog::error("shown");
  EXPECT_EQ(log.lines().size(), 1u);
}

}  // namespace
}  // namespace nodedns::app
