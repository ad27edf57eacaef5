#include "lib/dns/cache_image.h"

#include "gtest/gtest.h"
#include "lib/dns/name.h"

namespace nodedns::dns {
namespace {

Record Soa(uint32_t ttl, uint32_t minimum) {
  Record r{*NameFromText("example"), kTypeSOA, kClassIN, ttl, *NameFromText("ns.example") + *NameFromText("h.example")};
  uint8_t tail[20] = {};
  Write32(tail + 16, minimum);
  r.rdata.append(reinterpret_cast<char*>(tail), 20);
  return r;
}

Message Answer(uint16_t rcode, std::vector<uint32_t> ttls) {
  Message m;
  m.flags = kFlagQR | kFlagRA;
  m.set_rcode(rcode);
  m.questions.push_back({*NameFromText("A.Example"), kTypeA, kClassIN});
  for (uint32_t t : ttls) m.answers.push_back({*NameFromText("a.example"), kTypeA, kClassIN, t, "\x01\x02\x03\x04"});
  return m;
}

uint32_t TtlAt(const CacheImage& img, size_t i) { return Read32(img.wire.data() + img.ttl_offsets[i]); }

TEST(CacheImageTest, PositiveUsesMinimumTtlAndLowercasesQuestion) {
  auto img = BuildCacheImage(Answer(kNoError, {300, 120}), ImagePolicy{});
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img->kind, AnswerKind::kPositive);
  EXPECT_TRUE(img->cacheable);
  EXPECT_EQ(img->ttl, 120u);
  EXPECT_EQ(TtlAt(*img, 0), 120u);  // no record outlives the entry
  EXPECT_EQ(img->wire[13], 'a');    // question name lowercased at offset 12
  EXPECT_EQ(Read16(img->wire.data()), 0);
}

TEST(CacheImageTest, ClampsTtls) {
  ImagePolicy p{.min_ttl = 10, .max_ttl = 100, .negative_max_ttl = 50, .minimal_responses = true};
  EXPECT_EQ(BuildCacheImage(Answer(kNoError, {5}), p)->ttl, 10u);
  EXPECT_EQ(BuildCacheImage(Answer(kNoError, {5000}), p)->ttl, 100u);
  // High bit set: taken as unsigned and capped (RFC 8767 section 4).
  EXPECT_EQ(BuildCacheImage(Answer(kNoError, {0x80000000u}), p)->ttl, 100u);
}

TEST(CacheImageTest, ZeroTtlIsRelayedButNotCached) {
  auto img = BuildCacheImage(Answer(kNoError, {0}), ImagePolicy{});
  ASSERT_TRUE(img.ok());
  EXPECT_FALSE(img->cacheable);
}

TEST(CacheImageTest, NegativeTtlFromSoa) {
  Message nx = Answer(kNxDomain, {});
  nx.authority.push_back(Soa(3600, 60));
  auto img = BuildCacheImage(nx, ImagePolicy{});
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img->kind, AnswerKind::kNxDomain);
  EXPECT_TRUE(img->cacheable);
  EXPECT_EQ(img->ttl, 60u);  // min(SOA TTL, MINIMUM), RFC 2308 section 5
  EXPECT_EQ(TtlAt(*img, 0), 60u);

  Message nodata = Answer(kNoError, {});
  nodata.authority.push_back(Soa(30, 600));
  img = BuildCacheImage(nodata, ImagePolicy{});
  EXPECT_EQ(img->kind, AnswerKind::kNoData);
  EXPECT_EQ(img->ttl, 30u);

  ImagePolicy cap{.min_ttl = 0, .max_ttl = 86400, .negative_max_ttl = 20, .minimal_responses = true};
  EXPECT_EQ(BuildCacheImage(nx, cap)->ttl, 20u);
}

TEST(CacheImageTest, NegativeWithoutSoaNotCached) {
  auto img = BuildCacheImage(Answer(kNxDomain, {}), ImagePolicy{});
  ASSERT_TRUE(img.ok());
  EXPECT_FALSE(img->cacheable);
}

TEST(CacheImageTest, ErrorsAndTruncatedNotCached) {
  auto sf = BuildCacheImage(Answer(kServFail, {}), ImagePolicy{});
  EXPECT_EQ(sf->kind, AnswerKind::kServFail);
  EXPECT_FALSE(sf->cacheable);
  EXPECT_FALSE(BuildCacheImage(Answer(kRefused, {}), ImagePolicy{})->cacheable);
  Message tc = Answer(kNoError, {60});
  tc.flags |= kFlagTC;
  EXPECT_FALSE(BuildCacheImage(tc, ImagePolicy{})->cacheable);
}

// Minimal responses (on by default): a positive answer keeps its answers
// only; a negative one its SOA and denial of existence; no glue. Off: all
// sections as the upstream sent them.
TEST(CacheImageTest, MinimalResponsesKeepWhatTheClientNeeds) {
  Record ns{*NameFromText("example"), kTypeNS, kClassIN, 60, *NameFromText("ns.example")};
  Record nsec{*NameFromText("example"), kTypeNSEC, kClassIN, 300, *NameFromText("z.example") + std::string(2, '\0')};
  Record sig{*NameFromText("example"), kTypeRRSIG, kClassIN, 300, std::string(20, '\x01')};
  Record glue{*NameFromText("ns.example"), kTypeA, kClassIN, 300, "\x05\x06\x07\x08"};

  Message positive = Answer(kNoError, {300});
  positive.authority = {ns, sig};
  positive.additional = {glue};
  auto minimal = BuildCacheImage(positive, ImagePolicy{});
  ASSERT_TRUE(minimal.ok());
  auto m = ParseMessage(minimal->wire);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->answers.size(), 1u);
  EXPECT_TRUE(m->authority.empty());
  EXPECT_TRUE(m->additional.empty());
  EXPECT_EQ(minimal->ttl, 300u) << "the NS record's 60 s no longer shortens the entry";
  ImagePolicy full;
  full.minimal_responses = false;
  auto whole = BuildCacheImage(positive, full);
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(ParseMessage(whole->wire)->authority.size(), 2u);
  EXPECT_EQ(ParseMessage(whole->wire)->additional.size(), 1u);
  EXPECT_EQ(whole->ttl, 60u);
  EXPECT_LT(minimal->wire.size(), whole->wire.size());

  Message nx = Answer(kNxDomain, {});
  nx.authority = {Soa(300, 60), ns, nsec, sig};
  nx.additional = {glue};
  auto neg = BuildCacheImage(nx, ImagePolicy{});
  ASSERT_TRUE(neg.ok());
  auto n = ParseMessage(neg->wire);
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(n->authority.size(), 3u);
  EXPECT_EQ(n->authority[0].type, kTypeSOA);
  EXPECT_EQ(n->authority[1].type, kTypeNSEC);
  EXPECT_EQ(n->authority[2].type, kTypeRRSIG);
  EXPECT_TRUE(n->additional.empty());
}

}  // namespace
}  // namespace nodedns::dns
