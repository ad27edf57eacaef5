#include "lib/server/query_log.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/dns/message.h"
#include "lib/dns/name.h"
#include "tests/support/log_capture.h"

namespace nodedns::server {
namespace {

using ::testing::ElementsAre;

std::vector<uint8_t> Answer(uint16_t rcode, int answers) {
  dns::Message m;
  m.id = 1;
  m.flags = dns::kFlagQR | dns::kFlagRD | dns::kFlagRA;
  m.set_rcode(rcode);
  std::string name = *dns::NameFromText("www.example");
  m.questions.push_back({name, dns::kTypeAAAA, dns::kClassIN});
  for (int i = 0; i < answers; ++i) {
    m.answers.push_back({name, dns::kTypeAAAA, dns::kClassIN, 60, std::string(16, static_cast<char>(i))});
  }
  return *dns::WriteMessage(m);
}

TEST(QueryLogTest, SamplesOneInN) {
  QueryLog off;
  EXPECT_FALSE(off.enabled());
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(off.Sample());

  QueryLog every;
  every.set_sample(1);
  EXPECT_TRUE(every.enabled());
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(every.Sample());

  QueryLog third;
  third.set_sample(3);
  std::vector<bool> picked;
  for (int i = 0; i < 7; ++i) picked.push_back(third.Sample());
  EXPECT_THAT(picked, ElementsAre(false, false, true, false, false, true, false));
  // Turned off again (reload): nothing more.
  third.set_sample(0);
  EXPECT_FALSE(third.enabled());
  EXPECT_FALSE(third.Sample());
}

TEST(QueryLogTest, OneLinePerLoggedAnswer) {
  nodedns::testing::LogCapture log;
  QueryLog q;
  std::vector<uint8_t> a = Answer(dns::kNoError, 2);
  q.Log(*SocketAddress::Parse("192.0.2.7:40000"), false, a, 1'234'567);
  q.Log(*SocketAddress::Parse("[2001:db8::7]:40001"), true, Answer(dns::kNxDomain, 0), 999);
  EXPECT_THAT(log.lines(),
              ElementsAre("query client=192.0.2.7:40000 proto=udp name=www.example. type=AAAA rcode=NOERROR "
                          "answers=2 size=" + std::to_string(a.size()) + " latency_us=1234",
                          "query client=[2001:db8::7]:40001 proto=tcp name=www.example. type=AAAA rcode=NXDOMAIN "
                          "answers=0 size=" + std::to_string(Answer(dns::kNxDomain, 0).size()) + " latency_us=0"));
}

TEST(QueryLogTest, WhateverTheAnswerLooksLike) {
  nodedns::testing::LogCapture log;
  QueryLog q;
  SocketAddress client = *SocketAddress::Parse("192.0.2.7:1");
  // Other rcodes by number; no question; a cut message; almost nothing.
  std::vector<uint8_t> badvers = Answer(9, 0);
  q.Log(client, false, badvers, 0);
  std::vector<uint8_t> header_only(badvers.begin(), badvers.begin() + 12);
  header_only[5] = 0;  // QDCOUNT 0
  q.Log(client, false, header_only, 0);
  std::vector<uint8_t> cut(badvers.begin(), badvers.begin() + 20);
  q.Log(client, false, cut, 0);
  q.Log(client, false, std::vector<uint8_t>{0x12}, 0);
  auto lines = log.lines();
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_THAT(lines[0], ::testing::HasSubstr("name=www.example. type=AAAA rcode=RCODE9 answers=0"));
  EXPECT_THAT(lines[1], ::testing::HasSubstr("name=? type=? rcode=RCODE9 answers=0 size=12"));
  EXPECT_THAT(lines[2], ::testing::HasSubstr("name=? type=? rcode=RCODE9 answers=0 size=20"));
  EXPECT_THAT(lines[3], ::testing::HasSubstr("name=? type=? rcode=RCODE-1 answers=0 size=1"));
}

}  // namespace
}  // namespace nodedns::server
