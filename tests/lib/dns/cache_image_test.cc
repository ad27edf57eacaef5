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
  auto img = BuildCacheImage(Answer(kNoError, {300, 120}), TtlPolicy{});
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img->kind, AnswerKind::kPositive);
  EXPECT_TRUE(img->cacheable);
  EXPECT_EQ(img->ttl, 120u);
  EXPECT_EQ(TtlAt(*img, 0), 120u);  // no record outlives the entry
  EXPECT_EQ(img->wire[13], 'a');    // question name lowercased at offset 12
  EXPECT_EQ(Read16(img->wire.data()), 0);
}

TEST(CacheImageTest, ClampsTtls) {
  TtlPolicy p{.min_ttl = 10, .max_ttl = 100, .negative_max_ttl = 50};
  EXPECT_EQ(BuildCacheImage(Answer(kNoError, {5}), p)->ttl, 10u);
  EXPECT_EQ(BuildCacheImage(Answer(kNoError, {5000}), p)->ttl, 100u);
  // High bit set: taken as unsigned and capped (RFC 8767 section 4).
  EXPECT_EQ(BuildCacheImage(Answer(kNoError, {0x80000000u}), p)->ttl, 100u);
}

TEST(CacheImageTest, ZeroTtlIsRelayedButNotCached) {
  auto img = BuildCacheImage(Answer(kNoError, {0}), TtlPolicy{});
  ASSERT_TRUE(img.ok());
  EXPECT_FALSE(img->cacheable);
}

TEST(CacheImageTest, NegativeTtlFromSoa) {
  Message nx = Answer(kNxDomain, {});
  nx.authority.push_back(Soa(3600, 60));
  auto img = BuildCacheImage(nx, TtlPolicy{});
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img->kind, AnswerKind::kNxDomain);
  EXPECT_TRUE(img->cacheable);
  EXPECT_EQ(img->ttl, 60u);  // min(SOA TTL, MINIMUM), RFC 2308 section 5
  EXPECT_EQ(TtlAt(*img, 0), 60u);

  Message nodata = Answer(kNoError, {});
  nodata.authority.push_back(Soa(30, 600));
  img = BuildCacheImage(nodata, TtlPolicy{});
  EXPECT_EQ(img->kind, AnswerKind::kNoData);
  EXPECT_EQ(img->ttl, 30u);

  TtlPolicy cap{.min_ttl = 0, .max_ttl = 86400, .negative_max_ttl = 20};
  EXPECT_EQ(BuildCacheImage(nx, cap)->ttl, 20u);
}

TEST(CacheImageTest, NegativeWithoutSoaNotCached) {
  auto img = BuildCacheImage(Answer(kNxDomain, {}), TtlPolicy{});
  ASSERT_TRUE(img.ok());
  EXPECT_FALSE(img->cacheable);
}

TEST(CacheImageTest, ErrorsAndTruncatedNotCached) {
  auto sf = BuildCacheImage(Answer(kServFail, {}), TtlPolicy{});
  EXPECT_EQ(sf->kind, AnswerKind::kServFail);
  EXPECT_FALSE(sf->cacheable);
  EXPECT_FALSE(BuildCacheImage(Answer(kRefused, {}), TtlPolicy{})->cacheable);
  Message tc = Answer(kNoError, {60});
  tc.flags |= kFlagTC;
  EXPECT_FALSE(BuildCacheImage(tc, TtlPolicy{})->cacheable);
}

}  // namespace
}  // namespace nodedns::dns
