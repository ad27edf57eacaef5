#include "lib/control/commands.h"

#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/control/protocol.h"
#include "tests/support/fake_control_target.h"

namespace nodedns::control {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

std::string ParseError(const std::string& line) {
  auto r = ParseControlRequest(line);
  EXPECT_FALSE(r.ok()) << line;
  return r.ok() ? "" : std::string(r.status().message());
}

TEST(ParseControlRequestTest, CommandsWithoutFields) {
  EXPECT_TRUE(std::holds_alternative<StatsRequest>(*ParseControlRequest(R"({"command":"stats"})")));
  EXPECT_TRUE(std::holds_alternative<UpstreamsRequest>(*ParseControlRequest(R"({"command":"upstreams"})")));
  EXPECT_TRUE(std::holds_alternative<ReloadRequest>(*ParseControlRequest(R"({"command":"reload"})")));
  EXPECT_TRUE(std::holds_alternative<SnapshotRequest>(*ParseControlRequest(R"({"command":"snapshot"})" "\n")));
  EXPECT_TRUE(std::holds_alternative<HealthRequest>(*ParseControlRequest(R"({"command":"health"})")));
  for (const char* cmd : {"stats", "upstreams", "reload", "snapshot", "health"}) {
    EXPECT_EQ(ParseError(std::string(R"({"command":")") + cmd + R"(","x":1})"),
              std::string(cmd) + ": unknown field \"x\"");
  }
}

TEST(ParseControlRequestTest, MalformedAndUnknown) {
  EXPECT_THAT(ParseError("not json"), HasSubstr("malformed request"));
  EXPECT_THAT(ParseError("[1]"), HasSubstr("malformed request"));
  EXPECT_THAT(ParseError(R"({"cmd":"stats"})"), HasSubstr("\"command\" must be a string"));
  EXPECT_THAT(ParseError(R"({"command":7})"), HasSubstr("\"command\" must be a string"));
  EXPECT_EQ(ParseError(R"({"command":"explode"})"), "unknown command 'explode'");
  EXPECT_EQ(ParseError(R"({"command":")" + std::string(500, 'x') + "\"}"), "unknown command '" + std::string(64, 'x') +
                                                                            "'");
}

TEST(ParseControlRequestTest, Dump) {
  auto d = std::get<DumpRequest>(*ParseControlRequest(R"({"command":"dump"})"));
  EXPECT_EQ(d.limit, protocol::kDefaultDumpLimit);
  EXPECT_TRUE(d.name_lower.empty());
  d = std::get<DumpRequest>(*ParseControlRequest(R"({"command":"dump","name":"WWW.Example","limit":0})"));
  EXPECT_EQ(d.limit, 0u);
  EXPECT_EQ(d.name_text, "WWW.Example");
  EXPECT_EQ(d.name_lower, std::string("\3www\7example\0", 13));
  EXPECT_EQ(std::get<DumpRequest>(*ParseControlRequest(R"({"command":"dump","limit":100000})")).limit, 100000u);
  EXPECT_EQ(ParseError(R"({"command":"dump","limit":-1})"),
            "dump: \"limit\" must be an integer from 0 to 100000, got -1");
  EXPECT_EQ(ParseError(R"({"command":"dump","limit":100001})"),
            "dump: \"limit\" must be an integer from 0 to 100000, got 100001");
  EXPECT_EQ(ParseError(R"({"command":"dump","limit":18446744073709551615})"),
            "dump: \"limit\" must be an integer from 0 to 100000, got 18446744073709551615");
  EXPECT_EQ(ParseError(R"({"command":"dump","limit":1.5})"),
            "dump: \"limit\" must be an integer from 0 to 100000, got 1.5");
  EXPECT_EQ(ParseError(R"({"command":"dump","limit":"10"})"),
            "dump: \"limit\" must be an integer from 0 to 100000, got \"10\"");
  EXPECT_EQ(ParseError(R"({"command":"dump","limit":null})"),
            "dump: \"limit\" must be an integer from 0 to 100000, got null");
  EXPECT_EQ(ParseError(R"({"command":"dump","name":["a"]})"),
            "dump: \"name\" must be a string of at most 1024 bytes, got [...]");
  EXPECT_THAT(ParseError(R"({"command":"dump","name":"a..b"})"), HasSubstr("dump: \"name\" empty label"));
  // Long values are cut in the message.
  EXPECT_THAT(ParseError(R"({"command":"dump","name":")" + std::string(2000, 'x') + "\"}"),
              HasSubstr("got \"" + std::string(36, 'x') + "..."));
  // Deep nesting is refused before anything recurses over it (dumping it
  // into this very message overflowed the stack; found by the fuzzer).
  EXPECT_EQ(ParseError(R"({"command":"dump","limit":)" + std::string(32000, '[') + std::string(32000, ']') + "}"),
            "malformed request: nested more than 16 levels deep");
  EXPECT_EQ(ParseError(R"({"command":"dump","limit":)" + std::string(15, '[') + std::string(15, ']') + "}"),
            "dump: \"limit\" must be an integer from 0 to 100000, got [...]");
  // Brackets inside strings do not count.
  auto bracketed = ParseControlRequest(R"({"command":"dump","name":")" + std::string(20, '[') + R"(x\"]{"})");
  ASSERT_TRUE(bracketed.ok()) << bracketed.status();
  EXPECT_EQ(std::get<DumpRequest>(*bracketed).name_text, std::string(20, '[') + "x\"]{");
}

TEST(ParseControlRequestTest, Flush) {
  auto f = std::get<FlushRequest>(*ParseControlRequest(R"({"command":"flush","all":true})"));
  EXPECT_TRUE(f.all);
  f = std::get<FlushRequest>(*ParseControlRequest(R"({"command":"flush","name":"x.example"})"));
  EXPECT_FALSE(f.all);
  EXPECT_EQ(f.name_lower, std::string("\1x\7example\0", 11));
  // The inputs that used to end the daemon with an uncaught type_error.
  EXPECT_EQ(ParseError(R"({"command":"flush","all":null})"), "flush: \"all\" must be true or false, got null");
  EXPECT_EQ(ParseError(R"({"command":"flush","all":"yes"})"), "flush: \"all\" must be true or false, got \"yes\"");
  EXPECT_EQ(ParseError(R"({"command":"flush","all":1})"), "flush: \"all\" must be true or false, got 1");
  EXPECT_EQ(ParseError(R"({"command":"flush"})"), "flush: give \"name\" (a domain name) or \"all\": true");
  EXPECT_EQ(ParseError(R"({"command":"flush","all":false})"), "flush: give \"name\" (a domain name) or \"all\": true");
  EXPECT_EQ(ParseError(R"({"command":"flush","all":true,"name":"x"})"),
            "flush: give \"name\" or \"all\": true, not both");
  EXPECT_EQ(ParseError(R"({"command":"flush","name":5})"), "flush: \"name\" must be a string of at most 1024 bytes, got 5");
  EXPECT_EQ(ParseError(R"({"command":"flush","all":true,"really":true})"), "flush: unknown field \"really\"");
}

TEST(ParseControlRequestTest, HandoverAndRelease) {
  auto h = std::get<HandoverRequest>(*ParseControlRequest(R"({"command":"handover","pid":42,"protocol":1})"));
  EXPECT_EQ(h.pid, 42);
  EXPECT_EQ(h.protocol, 1);
  EXPECT_EQ(h.version, "");
  EXPECT_EQ(ParseError(R"({"command":"handover","protocol":1})"),
            "handover: \"pid\" is missing (an integer from 1 to 4194304)");
  EXPECT_EQ(ParseError(R"({"command":"handover","pid":"42","protocol":1})"),
            "handover: \"pid\" must be an integer from 1 to 4194304, got \"42\"");
  EXPECT_EQ(ParseError(R"({"command":"handover","pid":0,"protocol":1})"),
            "handover: \"pid\" must be an integer from 1 to 4194304, got 0");
  EXPECT_EQ(ParseError(R"({"command":"handover","pid":42})"),
            "handover: \"protocol\" is missing (an integer from 1 to 1000000)");
  EXPECT_EQ(ParseError(R"({"command":"handover","pid":42,"protocol":1,"version":7})"),
            "handover: \"version\" must be a string of at most 64 bytes, got 7");

  auto r = std::get<ReleaseRequest>(*ParseControlRequest(
      R"({"command":"release","pid":42,"protocol":1,"version":"0.1.0","addresses":["127.0.0.1:53","[::1]:53"]})"));
  ASSERT_EQ(r.addresses.size(), 2u);
  EXPECT_EQ(r.addresses[1].ToString(), "[::1]:53");
  EXPECT_EQ(ParseError(R"({"command":"release","pid":42,"protocol":1})"),
            "release: \"addresses\" is missing (an array of 1 to 64 \"ADDR:PORT\" strings)");
  EXPECT_EQ(ParseError(R"({"command":"release","pid":42,"protocol":1,"addresses":[]})"),
            "release: \"addresses\" must be an array of 1 to 64 \"ADDR:PORT\" strings, got []");
  EXPECT_EQ(ParseError(R"({"command":"release","pid":42,"protocol":1,"addresses":["127.0.0.1"]})"),
            "release: \"addresses\" must be an array of 1 to 64 \"ADDR:PORT\" strings, got \"127.0.0.1\"");
  EXPECT_EQ(ParseError(R"({"command":"release","pid":{},"protocol":1,"addresses":["127.0.0.1:53"]})"),
            "release: \"pid\" must be an integer from 1 to 4194304, got {}");

  // What a successor sends is what the parser accepts.
  ReleaseRequest sent{7, protocol::kHandoverProtocol, "0.1.0", {*SocketAddress::Parse("127.0.0.1:5300")}};
  auto back = std::get<ReleaseRequest>(*ParseControlRequest(ReleaseRequestJson(sent).dump()));
  EXPECT_EQ(back.pid, 7);
  EXPECT_EQ(back.addresses, sent.addresses);
  HandoverRequest hs{8, protocol::kHandoverProtocol, "0.1.0"};
  EXPECT_EQ(std::get<HandoverRequest>(*ParseControlRequest(HandoverRequestJson(hs).dump())).pid, 8);
}

class HandleControlRequestTest : public ::testing::Test {
 protected:
  // Answers `line` and returns the parsed answer (exactly one expected).
  json Handle(const std::string& line) {
    int answers = 0;
    std::string out;
    HandleControlRequest(line, peer_, target_, [&](std::string a) {
      ++answers;
      out = std::move(a);
    });
    target_.FinishSnapshots();
    EXPECT_EQ(answers, 1) << line;
    EXPECT_EQ(out.back(), '\n');
    return json::parse(out, nullptr, false);
  }

  testing::FakeControlTarget target_;
  PeerCredentials peer_{true, 1234, 1000, 1000};
};

TEST_F(HandleControlRequestTest, ErrorsAnswerOkFalseAndLeaveTheDaemonAlone) {
  size_t entries = target_.Cache().entries();
  json a = Handle(R"({"command":"flush","all":null})");
  EXPECT_EQ(a["ok"], false);
  EXPECT_EQ(a["error"], "flush: \"all\" must be true or false, got null");
  EXPECT_EQ(target_.Cache().entries(), entries);  // nothing flushed
  EXPECT_EQ(Handle(R"({"command":"reload","now":true})")["error"], "reload: unknown field \"now\"");
  EXPECT_EQ(target_.reloads, 0);
}

TEST_F(HandleControlRequestTest, DumpAndFlushActOnTheCache) {
  json d = Handle(R"({"command":"dump"})");
  ASSERT_EQ(d["ok"], true);
  EXPECT_EQ(d["matched"], 5);
  EXPECT_EQ(d["entries"].size(), 5u);
  d = Handle(R"({"command":"dump","name":"FRESH.example","limit":1})");
  EXPECT_EQ(d["matched"], 2);
  EXPECT_EQ(d["entries"].size(), 1u);
  EXPECT_EQ(d["truncated"], true);
  EXPECT_EQ(d["entries"][0]["name"], "fresh.example.");
  EXPECT_EQ(d["entries"][0]["state"], "fresh");
  json stale = Handle(R"({"command":"dump","name":"stale.example"})")["entries"][0];
  EXPECT_EQ(stale["state"], "stale");
  EXPECT_NEAR(stale["stale_seconds"].get<double>(), 100, 2);

  EXPECT_EQ(Handle(R"({"command":"flush","name":"fresh.example"})")["removed"], 2);
  EXPECT_EQ(target_.Cache().entries(), 3u);
  EXPECT_EQ(Handle(R"({"command":"flush","all":true})")["removed"], 3);
  EXPECT_EQ(target_.Cache().entries(), 0u);
}

TEST_F(HandleControlRequestTest, OtherCommandsReachTheTarget) {
  json s = Handle(R"({"command":"stats"})");
  EXPECT_EQ(s["ok"], true);
  EXPECT_EQ(s["version"], "test");
  json u = Handle(R"({"command":"upstreams"})");
  EXPECT_EQ(u["zones"][0]["zone"], ".");
  EXPECT_EQ(u["upstreams"][0]["server"], "192.0.2.1:53");
  EXPECT_EQ(Handle(R"({"command":"reload"})")["source"], "fake.toml");
  target_.reload_result = absl::InvalidArgumentError("nodedns.toml:3: bad");
  json r = Handle(R"({"command":"reload"})");
  EXPECT_EQ(r["ok"], false);
  EXPECT_EQ(r["error"], "nodedns.toml:3: bad");
  EXPECT_EQ(target_.reloads, 2);
  json snap = Handle(R"({"command":"snapshot"})");  // answered later, once written
  EXPECT_EQ(snap["path"], "/fake.snap");
  target_.health = {false, true, "worker 0 silent for 3000 ms; "};
  json h = Handle(R"({"command":"health"})");
  EXPECT_EQ(h["healthy"], false);
  EXPECT_EQ(h["detail"], "worker 0 silent for 3000 ms; ");

  json refused = Handle(R"({"command":"release","pid":9,"protocol":1,"addresses":["127.0.0.1:53"]})");
  EXPECT_EQ(refused["ok"], false);
  EXPECT_EQ(refused["error"], "not a successor");
  ASSERT_EQ(target_.releases.size(), 1u);
  EXPECT_EQ(target_.releases[0].pid, 9);
  target_.peer_result = absl::OkStatus();
  EXPECT_EQ(Handle(R"({"command":"handover","pid":9,"protocol":1})")["ok"], true);
}

TEST_F(HandleControlRequestTest, AnExceptionBecomesAnErrorAnswer) {
  target_.throw_from_stats = true;
  json a = Handle(R"({"command":"stats"})");
  EXPECT_EQ(a["ok"], false);
  EXPECT_EQ(a["error"], "internal error: stats exploded");
  target_.throw_from_stats = false;
  EXPECT_EQ(Handle(R"({"command":"stats"})")["ok"], true);
}

TEST(RenderAnswerTest, NeverThrowsOnBytesThatAreNotUtf8) {
  std::string answer = RenderAnswer(ErrorAnswer("cannot open /etc/\xff\xfe.toml"));
  EXPECT_EQ(answer.back(), '\n');
  json j = json::parse(answer, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_THAT(j["error"].get<std::string>(), HasSubstr("cannot open /etc/"));
}

}  // namespace
}  // namespace nodedns::control
