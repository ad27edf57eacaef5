#include "lib/dns/answer.h"

#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "lib/dns/cache_image.h"
#include "lib/dns/message.h"
#include "lib/dns/name.h"

namespace nodedns::dns {
namespace {

Message Upstream(int records, uint32_t ttl, bool ad = false) {
  Message m;
  m.flags = kFlagQR | kFlagRA | kFlagRD | (ad ? kFlagAD : 0);
  m.questions.push_back({*NameFromText("www.example.com"), kTypeA, kClassIN});
  for (int i = 0; i < records; ++i) {
    std::string a("\xc0\x00\x02\x00", 4);
    a[3] = static_cast<char>(i);
    m.answers.push_back({*NameFromText("www.example.com"), kTypeA, kClassIN, ttl, a});
  }
  return m;
}

struct Rendered {
  Message msg;
  bool truncated;
  size_t size;
};

Rendered Render(const CacheImage& image, const std::vector<uint8_t>& query, const RenderParams& p) {
  QueryView q;
  EXPECT_EQ(InspectQuery(query.data(), query.size(), &q), QueryCheck::kOk);
  std::vector<uint8_t> out(image.wire.size() + kAnswerOverhead);
  std::memcpy(out.data(), image.wire.data(), image.wire.size());
  Rendered r;
  r.size = FinishAnswer(out.data(), image.wire.size(), image.ttl_offsets, query.data(), q, p, &r.truncated);
  auto m = ParseMessage({out.data(), r.size});
  EXPECT_TRUE(m.ok()) << m.status();
  if (m.ok()) r.msg = *m;
  return r;
}

std::vector<uint8_t> ClientQuery(bool edns, bool do_bit = false, uint16_t id = 0x7777) {
  Message m;
  m.id = id;
  m.flags = kFlagRD;
  m.questions.push_back({*NameFromText("WWW.example.COM"), kTypeA, kClassIN});
  if (edns) {
    m.edns = Edns{};
    m.edns->dnssec_ok = do_bit;
  }
  return *WriteMessage(m);
}

TEST(FinishAnswerTest, PatchesIdCaseFlagsAndAgesTtls) {
  auto image = *BuildCacheImage(Upstream(2, 300), ImagePolicy{});
  RenderParams p;
  p.age_seconds = 100;
  Rendered r = Render(image, ClientQuery(false), p);
  EXPECT_FALSE(r.truncated);
  EXPECT_EQ(r.msg.id, 0x7777);
  EXPECT_EQ(NameToText(r.msg.questions[0].name), "WWW.example.COM.");
  EXPECT_TRUE(r.msg.flags & kFlagQR);
  EXPECT_TRUE(r.msg.flags & kFlagRA);
  EXPECT_TRUE(r.msg.flags & kFlagRD);
  EXPECT_FALSE(r.msg.flags & kFlagAA);
  ASSERT_EQ(r.msg.answers.size(), 2u);
  EXPECT_EQ(r.msg.answers[0].ttl, 200u);
  EXPECT_EQ(r.msg.answers[1].ttl, 200u);
  EXPECT_FALSE(r.msg.edns);  // no OPT for a client without EDNS
}

TEST(FinishAnswerTest, TtlFloorsAtZeroAndStaleUsesStaleTtl) {
  auto image = *BuildCacheImage(Upstream(1, 60), ImagePolicy{});
  RenderParams p;
  p.age_seconds = 1000;
  EXPECT_EQ(Render(image, ClientQuery(false), p).msg.answers[0].ttl, 0u);
  p.stale = true;
  p.stale_ttl = 30;
  p.ede_code = kEdeStaleAnswer;
  Rendered r = Render(image, ClientQuery(true), p);
  EXPECT_EQ(r.msg.answers[0].ttl, 30u);
  ASSERT_TRUE(r.msg.edns);
  ASSERT_EQ(r.msg.edns->options.size(), 1u);
  EXPECT_EQ(Read16(reinterpret_cast<const uint8_t*>(r.msg.edns->options[0].data.data())), kEdeStaleAnswer);
}

TEST(FinishAnswerTest, OptOnlyForEdnsClientsAndDoEchoed) {
  auto image = *BuildCacheImage(Upstream(1, 60), ImagePolicy{});
  Rendered r = Render(image, ClientQuery(true, true), RenderParams{});
  ASSERT_TRUE(r.msg.edns);
  EXPECT_TRUE(r.msg.edns->dnssec_ok);
  EXPECT_EQ(r.msg.edns->udp_size, kDefaultEdnsPayload);
  EXPECT_TRUE(r.msg.edns->options.empty());
}

TEST(FinishAnswerTest, AdOnlyForDnssecAwareClients) {
  auto image = *BuildCacheImage(Upstream(1, 60, /*ad=*/true), ImagePolicy{});
  EXPECT_FALSE(Render(image, ClientQuery(true, false), RenderParams{}).msg.flags & kFlagAD);
  EXPECT_TRUE(Render(image, ClientQuery(true, true), RenderParams{}).msg.flags & kFlagAD);
}

TEST(FinishAnswerTest, TruncatesToClientLimit) {
  auto image = *BuildCacheImage(Upstream(40, 60), ImagePolicy{});
  ASSERT_GT(image.wire.size(), 512u);
  RenderParams p;
  p.size_limit = 512;
  Rendered r = Render(image, ClientQuery(false), p);
  EXPECT_TRUE(r.truncated);
  EXPECT_LE(r.size, 512u);
  EXPECT_TRUE(r.msg.flags & kFlagTC);
  EXPECT_TRUE(r.msg.answers.empty());
  ASSERT_EQ(r.msg.questions.size(), 1u);
  EXPECT_EQ(NameToText(r.msg.questions[0].name), "WWW.example.COM.");

  p.size_limit = kMaxMessageSize;
  r = Render(image, ClientQuery(false), p);
  EXPECT_FALSE(r.truncated);
  EXPECT_EQ(r.msg.answers.size(), 40u);
}

TEST(FinishAnswerTest, TruncatedFromHeaderOnly) {
  auto image = *BuildCacheImage(Upstream(40, 60), ImagePolicy{});
  auto query = ClientQuery(true);
  QueryView q;
  ASSERT_EQ(InspectQuery(query.data(), query.size(), &q), QueryCheck::kOk);
  uint8_t out[600];
  size_t n = WriteTruncatedAnswer(image.wire.data(), query.data(), q, RenderParams{}, out, sizeof(out));
  auto m = ParseMessage({out, n});
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->flags & kFlagTC);
  EXPECT_EQ(m->id, 0x7777);
  EXPECT_TRUE(m->edns);
}

}  // namespace
}  // namespace nodedns::dns
