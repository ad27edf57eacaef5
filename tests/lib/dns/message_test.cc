#include "lib/dns/message.h"

#include <vector>

#include "gtest/gtest.h"
#include "lib/dns/name.h"

namespace nodedns::dns {
namespace {

std::vector<uint8_t> Header(uint16_t qd, uint16_t an, uint16_t ns, uint16_t ar, uint16_t flags = 0x8180) {
  std::vector<uint8_t> h(12);
  Write16(&h[0], 0xabcd);
  Write16(&h[2], flags);
  Write16(&h[4], qd);
  Write16(&h[6], an);
  Write16(&h[8], ns);
  Write16(&h[10], ar);
  return h;
}

void Append(std::vector<uint8_t>& v, std::initializer_list<int> bytes) {
  for (int b : bytes) v.push_back(static_cast<uint8_t>(b));
}

void AppendName(std::vector<uint8_t>& v, const std::string& text) {
  std::string w = *NameFromText(text);
  v.insert(v.end(), w.begin(), w.end());
}

Message SampleAnswer() {
  Message m;
  m.id = 7;
  m.flags = kFlagQR | kFlagRD | kFlagRA;
  m.questions.push_back({*NameFromText("www.example.com"), kTypeA, kClassIN});
  Record cname{*NameFromText("www.example.com"), kTypeCNAME, kClassIN, 300, *NameFromText("web.example.com")};
  Record a{*NameFromText("web.example.com"), kTypeA, kClassIN, 60, std::string("\xc0\x00\x02\x01", 4)};
  m.answers = {cname, a};
  m.edns = Edns{};
  m.edns->dnssec_ok = true;
  m.edns->options.push_back(MakeExtendedError(kEdeStaleAnswer, "stale"));
  return m;
}

TEST(MessageTest, RoundTripWithCompression) {
  Message m = SampleAnswer();
  std::vector<uint16_t> ttls;
  WriteOptions o;
  o.ttl_offsets = &ttls;
  auto wire = WriteMessage(m, o);
  ASSERT_TRUE(wire.ok()) << wire.status();
  // Names after the first are compressed: the encoding is shorter than the
  // sum of uncompressed names.
  EXPECT_LT(wire->size(), 100u);
  ASSERT_EQ(ttls.size(), 2u);
  EXPECT_EQ(Read32(wire->data() + ttls[0]), 300u);
  EXPECT_EQ(Read32(wire->data() + ttls[1]), 60u);

  auto back = ParseMessage(*wire);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->id, 7);
  ASSERT_EQ(back->answers.size(), 2u);
  EXPECT_EQ(NameToText(back->answers[0].rdata), "web.example.com.");  // decompressed RDATA
  EXPECT_EQ(back->answers[1].rdata, std::string("\xc0\x00\x02\x01", 4));
  ASSERT_TRUE(back->edns.has_value());
  EXPECT_TRUE(back->edns->dnssec_ok);
  EXPECT_EQ(back->edns->udp_size, kDefaultEdnsPayload);
  ASSERT_EQ(back->edns->options.size(), 1u);
  EXPECT_EQ(back->edns->options[0].code, kOptionExtendedError);
  EXPECT_EQ(back->edns->options[0].data, std::string("\x00\x03stale", 7));
}

TEST(MessageTest, ExtendedRcodeRoundTrip) {
  Message m;
  m.set_rcode(kBadVers);
  auto wire = WriteMessage(m);
  ASSERT_TRUE(wire.ok());
  auto back = ParseMessage(*wire);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->rcode(), kBadVers);
  EXPECT_EQ(back->flags & kRcodeMask, 0);
}

TEST(MessageTest, RejectsShortHeader) {
  std::vector<uint8_t> v(11, 0);
  EXPECT_FALSE(ParseMessage(v).ok());
}

TEST(MessageTest, RejectsCountsBeyondSize) {
  auto v = Header(0, 65535, 0, 0);
  EXPECT_FALSE(ParseMessage(v).ok());
}

TEST(MessageTest, RejectsPointerLoop) {
  auto v = Header(1, 0, 0, 0);
  Append(v, {0xC0, 12, 0, 1, 0, 1});  // name points at itself
  EXPECT_FALSE(ParseMessage(v).ok());
}

TEST(MessageTest, RejectsForwardPointer) {
  auto v = Header(1, 0, 0, 0);
  Append(v, {0xC0, 18, 0, 1, 0, 1, 3, 'c', 'o', 'm', 0});
  EXPECT_FALSE(ParseMessage(v).ok());
}

TEST(MessageTest, RejectsTwoStepLoop) {
  // Question name at 12: label "a" then pointer to 20; at 20: pointer to 12.
  auto v = Header(1, 0, 0, 0);
  Append(v, {1, 'a', 0xC0, 20, 0, 1, 0, 1, 0xC0, 12});
  EXPECT_FALSE(ParseMessage(v).ok());
}

TEST(MessageTest, AcceptsBackwardPointer) {
  auto v = Header(1, 1, 0, 0);
  AppendName(v, "example.com");
  Append(v, {0, 1, 0, 1});
  Append(v, {3, 'w', 'w', 'w', 0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4});
  auto m = ParseMessage(v);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(NameToText(m->answers[0].name), "www.example.com.");
}

TEST(MessageTest, RejectsLongLabel) {
  auto v = Header(1, 0, 0, 0);
  v.push_back(64);
  v.insert(v.end(), 64, 'a');
  Append(v, {0, 0, 1, 0, 1});
  EXPECT_FALSE(ParseMessage(v).ok());
}

TEST(MessageTest, RejectsNameOver255) {
  auto v = Header(1, 0, 0, 0);
  for (int i = 0; i < 5; ++i) {  // 5 x 51 = 255 octets of labels + root = 256
    v.push_back(50);
    v.insert(v.end(), 50, 'a');
  }
  Append(v, {0, 0, 1, 0, 1});
  EXPECT_FALSE(ParseMessage(v).ok());
}

TEST(MessageTest, AcceptsName255) {
  auto v = Header(1, 0, 0, 0);
  for (int i = 0; i < 4; ++i) {  // 4 x 63 + 2 + root = 255
    v.push_back(62);
    v.insert(v.end(), 62, 'a');
  }
  Append(v, {1, 'b', 0, 0, 1, 0, 1});
  EXPECT_TRUE(ParseMessage(v).ok());
}

TEST(MessageTest, RejectsReservedLabelType) {
  auto v = Header(1, 0, 0, 0);
  Append(v, {0x40, 0, 1, 0, 1});
  EXPECT_FALSE(ParseMessage(v).ok());
}

TEST(MessageTest, RejectsTruncatedSections) {
  auto full = *WriteMessage(SampleAnswer());
  for (size_t cut = 0; cut < full.size(); ++cut) {
    std::vector<uint8_t> v(full.begin(), full.begin() + static_cast<long>(cut));
    EXPECT_FALSE(ParseMessage(v).ok()) << "cut at " << cut;
  }
}

TEST(MessageTest, RejectsTrailingBytes) {
  auto v = *WriteMessage(SampleAnswer());
  v.push_back(0);
  EXPECT_FALSE(ParseMessage(v).ok());
}

TEST(MessageTest, RejectsRdataLengthMismatchForNameTypes) {
  // CNAME whose RDLENGTH claims one octet more than its name.
  auto v = Header(0, 1, 0, 0);
  AppendName(v, "a.example");
  Append(v, {0, 5, 0, 1, 0, 0, 0, 60, 0, 6});
  AppendName(v, "b.ex");
  v.push_back(0);
  EXPECT_FALSE(ParseMessage(v).ok());
}

TEST(MessageTest, RejectsTwoOptRecords) {
  auto v = Header(0, 0, 0, 2, 0);
  for (int i = 0; i < 2; ++i) Append(v, {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0});
  EXPECT_FALSE(ParseMessage(v).ok());
}

TEST(MessageTest, RejectsOptOutsideAdditional) {
  auto v = Header(0, 1, 0, 0, 0);
  Append(v, {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0});
  EXPECT_FALSE(ParseMessage(v).ok());
}

TEST(MessageTest, RejectsOptNotOwnedByRoot) {
  auto v = Header(0, 0, 0, 1, 0);
  Append(v, {1, 'a', 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0});
  EXPECT_FALSE(ParseMessage(v).ok());
}

TEST(MessageTest, ParsesOptFields) {
  auto v = Header(0, 0, 0, 1, 0);
  // udp 4096, ext rcode 1, version 2, DO, one option (code 10, 2 bytes)
  Append(v, {0, 0, 41, 0x10, 0x00, 1, 2, 0x80, 0, 0, 6, 0, 10, 0, 2, 0xaa, 0xbb});
  auto m = ParseMessage(v);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_TRUE(m->edns);
  EXPECT_EQ(m->edns->udp_size, 4096);
  EXPECT_EQ(m->edns->extended_rcode, 1);
  EXPECT_EQ(m->edns->version, 2);
  EXPECT_TRUE(m->edns->dnssec_ok);
  ASSERT_EQ(m->edns->options.size(), 1u);
  EXPECT_EQ(m->edns->options[0].code, 10);
}

TEST(MessageTest, RejectsOptionOverrun) {
  auto v = Header(0, 0, 0, 1, 0);
  Append(v, {0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 4, 0, 10, 0, 9});
  EXPECT_FALSE(ParseMessage(v).ok());
}

TEST(MessageTest, WriterEnforcesSizeLimit) {
  Message m = SampleAnswer();
  WriteOptions o;
  o.max_size = 40;
  auto wire = WriteMessage(m, o);
  EXPECT_TRUE(absl::IsResourceExhausted(wire.status()));
}

TEST(MessageTest, SrvTargetIsNotCompressed) {
  Message m;
  m.questions.push_back({*NameFromText("_x._tcp.example.com"), kTypeSRV, kClassIN});
  std::string rdata("\x00\x01\x00\x02\x00\x03", 6);
  rdata += *NameFromText("example.com");
  m.answers.push_back({*NameFromText("_x._tcp.example.com"), kTypeSRV, kClassIN, 60, rdata});
  auto wire = WriteMessage(m);
  ASSERT_TRUE(wire.ok());
  // The SRV target appears in full at the end of the message.
  std::string w(wire->begin(), wire->end());
  EXPECT_EQ(w.substr(w.size() - 13), *NameFromText("example.com"));
  auto back = ParseMessage(*wire);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->answers[0].rdata, rdata);
}

}  // namespace
}  // namespace nodedns::dns
