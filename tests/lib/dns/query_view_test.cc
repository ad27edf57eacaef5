#include "lib/dns/query_view.h"
#include "lib/dns/writers.h"

#include <vector>

#include "gtest/gtest.h"
#include "lib/dns/message.h"
#include "lib/dns/name.h"

namespace nodedns::dns {
namespace {

std::vector<uint8_t> Query(const std::string& name, uint16_t type, bool edns = true, uint8_t version = 0,
                           bool do_bit = false, uint16_t flags = kFlagRD, uint16_t udp = 1232) {
  Message m;
  m.id = 0x4242;
  m.flags = flags;
  m.questions.push_back({*NameFromText(name), type, kClassIN});
  if (edns) {
    m.edns = Edns{};
    m.edns->version = version;
    m.edns->dnssec_ok = do_bit;
    m.edns->udp_size = udp;
    m.edns->options.push_back({10, "12345678"});  // a cookie: ignored
  }
  return *WriteMessage(m);
}

TEST(InspectQueryTest, AcceptsPlainQuery) {
  auto q = Query("www.Example.com", kTypeAAAA, false);
  QueryView v;
  ASSERT_EQ(InspectQuery(q.data(), q.size(), &v), QueryCheck::kOk);
  EXPECT_EQ(v.id, 0x4242);
  EXPECT_EQ(v.qtype, kTypeAAAA);
  EXPECT_EQ(v.qname_len, 17);
  EXPECT_EQ(v.question_end, 12 + 17 + 4);
  EXPECT_FALSE(v.has_edns);
  EXPECT_EQ(v.UdpLimit(1232), 512);
  EXPECT_TRUE(v.rd());
}

TEST(InspectQueryTest, ReadsEdns) {
  auto q = Query("a.b", kTypeA, true, 0, true, kFlagRD | kFlagCD, 4096);
  QueryView v;
  ASSERT_EQ(InspectQuery(q.data(), q.size(), &v), QueryCheck::kOk);
  EXPECT_TRUE(v.has_edns);
  EXPECT_TRUE(v.dnssec_ok);
  EXPECT_TRUE(v.cd());
  EXPECT_EQ(v.UdpLimit(1232), 1232);  // capped by our limit
  EXPECT_EQ(v.UdpLimit(8192), 4096);
}

TEST(InspectQueryTest, SmallEdnsSizeMeans512) {
  auto q = Query("a.b", kTypeA, true, 0, false, kFlagRD, 100);
  QueryView v;
  ASSERT_EQ(InspectQuery(q.data(), q.size(), &v), QueryCheck::kOk);
  EXPECT_EQ(v.UdpLimit(1232), 512);
}

TEST(InspectQueryTest, EarlyExits) {
  QueryView v;
  std::vector<uint8_t> shortq(11, 0);
  EXPECT_EQ(InspectQuery(shortq.data(), shortq.size(), &v), QueryCheck::kTooShort);

  auto resp = Query("a.b", kTypeA, false, 0, false, kFlagQR);
  EXPECT_EQ(InspectQuery(resp.data(), resp.size(), &v), QueryCheck::kIsResponse);

  auto notify = Query("a.b", kTypeSOA, false, 0, false, 4 << 11);
  EXPECT_EQ(InspectQuery(notify.data(), notify.size(), &v), QueryCheck::kNotImp);

  auto axfr = Query("a.b", kTypeAXFR, false);
  EXPECT_EQ(InspectQuery(axfr.data(), axfr.size(), &v), QueryCheck::kNotImp);

  auto badvers = Query("a.b", kTypeA, true, 1);
  EXPECT_EQ(InspectQuery(badvers.data(), badvers.size(), &v), QueryCheck::kBadVers);
  EXPECT_TRUE(v.has_edns);

  auto two = Query("a.b", kTypeA, false);
  Write16(two.data() + 4, 2);
  EXPECT_EQ(InspectQuery(two.data(), two.size(), &v), QueryCheck::kFormErr);

  auto zero = Query("a.b", kTypeA, false);
  Write16(zero.data() + 4, 0);
  EXPECT_EQ(InspectQuery(zero.data(), zero.size(), &v), QueryCheck::kFormErr);
}

TEST(InspectQueryTest, FormErrOnEveryTruncation) {
  auto q = Query("www.example.com", kTypeA, true);
  QueryView v;
  for (size_t cut = 12; cut < q.size(); ++cut) {
    EXPECT_EQ(InspectQuery(q.data(), cut, &v), QueryCheck::kFormErr) << "cut at " << cut;
  }
}

TEST(InspectQueryTest, FormErrOnCompressedQuestionAndBadOpt) {
  QueryView v;
  auto q = Query("a.b", kTypeA, false);
  q[12] = 0xC0;  // pointer in the question
  EXPECT_EQ(InspectQuery(q.data(), q.size(), &v), QueryCheck::kFormErr);

  auto two_opt = Query("a.b", kTypeA, true);
  size_t opt_start = 12 + 5 + 4;
  std::vector<uint8_t> opt(two_opt.begin() + static_cast<long>(opt_start), two_opt.end());
  two_opt.insert(two_opt.end(), opt.begin(), opt.end());
  Write16(two_opt.data() + 10, 2);
  EXPECT_EQ(InspectQuery(two_opt.data(), two_opt.size(), &v), QueryCheck::kFormErr);
}

TEST(CacheKeyTest, LowercasesAndIncludesDoCd) {
  auto a = Query("WWW.Example.COM", kTypeA, true, 0, false);
  auto b = Query("www.example.com", kTypeA, true, 0, false);
  auto c = Query("www.example.com", kTypeA, true, 0, true);
  auto d = Query("www.example.com", kTypeA, true, 0, false, kFlagRD | kFlagCD);
  auto e = Query("www.example.com", kTypeAAAA, true, 0, false);
  CacheKey ka, kb, kc, kd, ke;
  QueryView v;
  InspectQuery(a.data(), a.size(), &v);
  MakeCacheKey(a.data(), v, &ka);
  InspectQuery(b.data(), b.size(), &v);
  MakeCacheKey(b.data(), v, &kb);
  InspectQuery(c.data(), c.size(), &v);
  MakeCacheKey(c.data(), v, &kc);
  InspectQuery(d.data(), d.size(), &v);
  MakeCacheKey(d.data(), v, &kd);
  InspectQuery(e.data(), e.size(), &v);
  MakeCacheKey(e.data(), v, &ke);
  EXPECT_EQ(ka.view(), kb.view());
  EXPECT_NE(kb.view(), kc.view());
  EXPECT_NE(kb.view(), kd.view());
  EXPECT_NE(kc.view(), kd.view());
  EXPECT_NE(kb.view(), ke.view());
  EXPECT_EQ(NameToText(std::string(ka.qname())), "www.example.com.");
  EXPECT_EQ(ka.qtype(), kTypeA);
}

TEST(ErrorAnswerTest, EchoesIdQuestionAndOpt) {
  auto q = Query("Www.Example.com", kTypeA, true, 1, true);
  QueryView v;
  ASSERT_EQ(InspectQuery(q.data(), q.size(), &v), QueryCheck::kBadVers);
  uint8_t out[600];
  size_t n = WriteErrorAnswer(q.data(), q.size(), &v, kBadVers, -1, 1232, out, sizeof(out));
  ASSERT_GT(n, 0u);
  auto m = ParseMessage({out, n});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->id, 0x4242);
  EXPECT_EQ(m->rcode(), kBadVers);
  EXPECT_TRUE(m->flags & kFlagQR);
  EXPECT_TRUE(m->flags & kFlagRA);
  EXPECT_TRUE(m->flags & kFlagRD);
  EXPECT_FALSE(m->flags & kFlagAA);
  ASSERT_EQ(m->questions.size(), 1u);
  EXPECT_EQ(NameToText(m->questions[0].name), "Www.Example.com.");
  ASSERT_TRUE(m->edns);
  EXPECT_EQ(m->edns->version, 0);
}

TEST(ErrorAnswerTest, FormErrWithoutQuestionAndWithEde) {
  auto q = Query("a.b", kTypeA, true);
  QueryView v;
  ASSERT_EQ(InspectQuery(q.data(), q.size(), &v), QueryCheck::kOk);
  uint8_t out[600];
  size_t n = WriteErrorAnswer(q.data(), q.size(), nullptr, kFormErr, -1, 1232, out, sizeof(out));
  auto m = ParseMessage({out, n});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->rcode(), kFormErr);
  EXPECT_TRUE(m->questions.empty());
  EXPECT_FALSE(m->edns);

  n = WriteErrorAnswer(q.data(), q.size(), &v, kServFail, kEdeNoReachableAuthority, 1232, out, sizeof(out));
  m = ParseMessage({out, n});
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(m->edns);
  ASSERT_EQ(m->edns->options.size(), 1u);
  EXPECT_EQ(m->edns->options[0].code, kOptionExtendedError);
  EXPECT_EQ(Read16(reinterpret_cast<const uint8_t*>(m->edns->options[0].data.data())), kEdeNoReachableAuthority);
}

// RA and CD are defined for QUERY only: an answer to another opcode (NOTIMP)
// carries neither (ISC's genreport flags it); RD is copied for every opcode.
TEST(ErrorAnswerTest, RaAndCdOnlyForTheQueryOpcode) {
  uint8_t out[512];
  for (uint16_t opcode : {0, 2, 4, 5, 15}) {
    auto q = Query("example.com", kTypeA, false, 0, false,
                   static_cast<uint16_t>(kFlagRD | kFlagCD | (opcode << 11)));
    QueryView v;
    InspectQuery(q.data(), q.size(), &v);
    size_t n = WriteErrorAnswer(q.data(), q.size(), nullptr, opcode == 0 ? kServFail : kNotImp, -1, 1232, out,
                                sizeof(out));
    ASSERT_GE(n, kHeaderSize);
    uint16_t flags = Read16(out + 2);
    EXPECT_EQ(OpcodeOf(flags), opcode);
    EXPECT_NE(flags & kFlagRD, 0) << "opcode " << opcode;
    EXPECT_EQ((flags & kFlagRA) != 0, opcode == 0) << "opcode " << opcode;
    EXPECT_EQ((flags & kFlagCD) != 0, opcode == 0) << "opcode " << opcode;
  }
}

TEST(IsAnswerToTest, OnlyAResponseToTheSameQuestionInAnyCase) {
  std::string name = *NameFromText("www.Example.com");
  uint8_t query[kMaxQuerySize];
  size_t n = WriteQuery(name, kTypeA, kClassIN, false, false, query);
  std::vector<uint8_t> answer(query, query + n);
  absl::Span<const uint8_t> q(query, n);
  EXPECT_FALSE(IsAnswerTo(q, answer));  // QR=0: a query, not an answer
  answer[2] |= 0x80;
  EXPECT_TRUE(IsAnswerTo(q, answer));
  answer[kHeaderSize + 1] = 'W';  // 0x20 case: still the same question
  EXPECT_TRUE(IsAnswerTo(q, answer));
  auto other = answer;
  other[kHeaderSize + 2] = 'x';  // another name
  EXPECT_FALSE(IsAnswerTo(q, other));
  other = answer;
  other[kHeaderSize + name.size() + 1] = kTypeAAAA;  // another type
  EXPECT_FALSE(IsAnswerTo(q, other));
  other = answer;
  other[5] = 2;  // two questions
  EXPECT_FALSE(IsAnswerTo(q, other));
  other = answer;
  other[2] |= 0x08;  // another opcode
  EXPECT_FALSE(IsAnswerTo(q, other));
  EXPECT_FALSE(IsAnswerTo(q, absl::Span<const uint8_t>(answer.data(), kHeaderSize + 3)));  // cut short
}

}  // namespace
}  // namespace nodedns::dns

namespace nodedns::dns {
namespace {

TEST(WriteQueryTest, RdCdDoAndEdnsAsAsked) {
  uint8_t out[kMaxQuerySize];
  std::string name = *NameFromText("svc.cluster.local");
  size_t n = WriteQuery(name, kTypeAAAA, kClassIN, /*checking_disabled=*/true, /*dnssec_ok=*/true, out);
  auto m = ParseMessage({out, n});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->id, 0);
  EXPECT_EQ(m->flags, kFlagRD | kFlagCD);
  ASSERT_EQ(m->questions.size(), 1u);
  EXPECT_EQ(m->questions[0].name, name);
  EXPECT_EQ(m->questions[0].type, kTypeAAAA);
  ASSERT_TRUE(m->edns);
  EXPECT_TRUE(m->edns->dnssec_ok);
  EXPECT_EQ(m->edns->udp_size, kDefaultEdnsPayload);
  // The OPT record is the last 11 octets: c-ares strips exactly those when an
  // upstream answers FORMERR to EDNS.
  EXPECT_EQ(out[n - 11], 0);
  EXPECT_EQ(Read16(out + n - 10), kTypeOPT);

  n = WriteQuery(name, kTypeA, kClassIN, false, false, out);
  m = ParseMessage({out, n});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->flags, kFlagRD);
  EXPECT_FALSE(m->edns->dnssec_ok);
}

}  // namespace
}  // namespace nodedns::dns
