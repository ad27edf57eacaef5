#include "lib/dns/name.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/dns/constants.h"

namespace nodedns::dns {
namespace {

using ::testing::HasSubstr;
using namespace std::literals;

std::string Wire(std::string_view bytes) { return std::string(bytes); }

// n labels of `len` octets each, as text ("xxx.xxx...").
std::string Labels(int n, size_t len) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    if (i) out += '.';
    out += std::string(len, 'a' + static_cast<char>(i % 26));
  }
  return out;
}

TEST(NameTest, FromTextMakesUncompressedWire) {
  EXPECT_EQ(*NameFromText("www.example.com"), Wire("\3www\7example\3com\0"sv));
  // The final dot is optional.
  EXPECT_EQ(*NameFromText("www.example.com."), *NameFromText("www.example.com"));
  // "" and "." are the root.
  EXPECT_EQ(*NameFromText("."), std::string(1, '\0'));
  EXPECT_EQ(*NameFromText(""), std::string(1, '\0'));
  // Case is kept as given.
  EXPECT_EQ(*NameFromText("ExAmPle"), Wire("\7ExAmPle\0"sv));
}

TEST(NameTest, FromTextRefusesEmptyLabels) {
  for (const char* bad : {"a..b", ".a", "..", "a.b..", ".."}) {
    auto n = NameFromText(bad);
    ASSERT_FALSE(n.ok()) << bad;
    EXPECT_TRUE(absl::IsInvalidArgument(n.status())) << bad;
    EXPECT_THAT(n.status().message(), HasSubstr("empty label")) << bad;
  }
}

TEST(NameTest, LabelsUpTo63Octets) {
  auto ok = NameFromText(std::string(63, 'x') + ".com");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(static_cast<uint8_t>((*ok)[0]), 63);
  EXPECT_EQ(ok->size(), 1 + 63 + 1 + 3 + 1u);

  auto bad = NameFromText(std::string(64, 'x') + ".com");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("longer than 63"));
  // The last label too (no dot after it).
  EXPECT_FALSE(NameFromText("com." + std::string(64, 'x')).ok());
  // Escaped octets count once each.
  std::string escaped;
  for (int i = 0; i < 63; ++i) escaped += "\\065";
  EXPECT_TRUE(NameFromText(escaped).ok());
  EXPECT_FALSE(NameFromText(escaped + "\\065").ok());
}

TEST(NameTest, NamesUpTo255WireOctets) {
  // 3 x (1 + 63) + (1 + 61) + 1 = 255.
  std::string at_limit = Labels(3, 63) + "." + std::string(61, 'z');
  auto ok = NameFromText(at_limit);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->size(), kMaxNameLength);
  // With the final dot it is the same name.
  EXPECT_TRUE(NameFromText(at_limit + ".").ok());

  // One octet more: 256.
  auto bad = NameFromText(Labels(3, 63) + "." + std::string(62, 'z'));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("longer than 255"));
  // Many short labels: 128 one-octet labels and the root are 257 octets, 127
  // are 255.
  EXPECT_FALSE(NameFromText(Labels(128, 1)).ok());
  EXPECT_TRUE(NameFromText(Labels(127, 1)).ok());
}

TEST(NameTest, FromTextEscapes) {
  // \c takes the character literally, a dot included.
  EXPECT_EQ(*NameFromText("a\\.b.c"), Wire("\3a.b\1c\0"sv));
  EXPECT_EQ(*NameFromText("a\\\\b"), Wire("\3a\\b\0"sv));
  // \DDD is a decimal octet.
  EXPECT_EQ(*NameFromText("\\065bc"), Wire("\3Abc\0"sv));
  EXPECT_EQ(*NameFromText("\\000"), Wire("\1\0\0"sv));
  EXPECT_EQ(*NameFromText("x\\255"), Wire("\2x\xff\0"sv));
  EXPECT_EQ(*NameFromText("\\046"), Wire("\1.\0"sv));  // an escaped dot, not a separator
  // Fewer than three digits: a \c escape of the first one.
  EXPECT_EQ(*NameFromText("\\12"), Wire("\0021" "2\0"sv));

  auto over = NameFromText("\\256");
  ASSERT_FALSE(over.ok());
  EXPECT_THAT(over.status().message(), HasSubstr("bad escape"));
  auto trailing = NameFromText("abc\\");
  ASSERT_FALSE(trailing.ok());
  EXPECT_THAT(trailing.status().message(), HasSubstr("trailing backslash"));
}

TEST(NameTest, ToText) {
  EXPECT_EQ(NameToText(Wire("\3www\7example\3com\0"sv)), "www.example.com.");
  EXPECT_EQ(NameToText(std::string(1, '\0')), ".");
  EXPECT_EQ(NameToText(""), ".");
  EXPECT_EQ(NameToText(*NameFromText("A.b.C")), "A.b.C.");
  // Dots and backslashes inside labels are escaped; non-printable octets
  // (space included) become \DDD.
  EXPECT_EQ(NameToText(Wire("\3a.b\1c\0"sv)), "a\\.b.c.");
  EXPECT_EQ(NameToText(Wire("\3a\\b\0"sv)), "a\\\\b.");
  EXPECT_EQ(NameToText(Wire("\4a b\x7f\0"sv)), "a\\032b\\127.");
  EXPECT_EQ(NameToText(Wire("\2\0\xff\0"sv)), "\\000\\255.");
  // Reads no further than the buffer when a label overruns it.
  EXPECT_EQ(NameToText(Wire("\5ab"sv)), "ab.");
}

TEST(NameTest, TextRoundTripOfEveryOctet) {
  // Octets 0-127 in one name, 128-255 in another (labels of 63, 63, 2).
  for (int base : {0, 128}) {
    std::string wire;
    for (int first = base; first < base + 128; first += 63) {
      int n = std::min(63, base + 128 - first);
      wire.push_back(static_cast<char>(n));
      for (int i = 0; i < n; ++i) wire.push_back(static_cast<char>(first + i));
    }
    wire.push_back('\0');
    ASSERT_EQ(wire.size(), 132u);
    std::string text = NameToText(wire);
    auto back = NameFromText(text);
    ASSERT_TRUE(back.ok()) << back.status() << " for " << text;
    EXPECT_EQ(*back, wire) << text;
  }
}

TEST(NameTest, LowercaseFoldsOnlyAsciiLetters) {
  EXPECT_EQ(Lowercase(Wire("\3WwW\7ExAmPlE\0"sv)), Wire("\3www\7example\0"sv));
  // Octets outside A-Z (digits, '@', '[', UTF-8 bytes) are unchanged.
  EXPECT_EQ(Lowercase(Wire("\6@[Z09\xc3\0"sv)), Wire("\6@[z09\xc3\0"sv));
  std::string buf = "\3ABC\0"s;
  LowercaseInPlace(reinterpret_cast<uint8_t*>(buf.data()), 2);  // only the first two octets
  EXPECT_EQ(buf, Wire("\3aBC\0"sv));
}

TEST(NameTest, NamesEqualIgnoresAsciiCaseOnly) {
  EXPECT_TRUE(NamesEqual(*NameFromText("WwW.x"), *NameFromText("www.X")));
  EXPECT_FALSE(NamesEqual(*NameFromText("www.x"), *NameFromText("www.y")));
  EXPECT_FALSE(NamesEqual(*NameFromText("www.x"), *NameFromText("ww.wx")));  // same octets, other labels
  EXPECT_FALSE(NamesEqual(*NameFromText("a"), *NameFromText("a.a")));
  // 0xC3 and 0xE3 differ by 0x20 like 'C' and 'c', but are not letters.
  EXPECT_FALSE(NamesEqual(Wire("\1\xc3\0"sv), Wire("\1\xe3\0"sv)));
  // '@' (0x40) and '`' (0x60) likewise.
  EXPECT_FALSE(NamesEqual(Wire("\1@\0"sv), Wire("\1`\0"sv)));
}

TEST(NameTest, IsSubdomainAndLabelCount) {
  EXPECT_TRUE(IsSubdomain(*NameFromText("a.Cluster.Local"), *NameFromText("cluster.local")));
  EXPECT_TRUE(IsSubdomain(*NameFromText("cluster.local"), *NameFromText("cluster.local")));
  EXPECT_FALSE(IsSubdomain(*NameFromText("acluster.local"), *NameFromText("cluster.local")));
  EXPECT_FALSE(IsSubdomain(*NameFromText("cluster.local"), *NameFromText("a.cluster.local")));
  EXPECT_TRUE(IsSubdomain(*NameFromText("x.y"), *NameFromText(".")));
  EXPECT_EQ(LabelCount(*NameFromText("www.example.com")), 3);
  EXPECT_EQ(LabelCount(*NameFromText(".")), 0);
}

TEST(NameTest, ValidateUncompressedName) {
  auto validate = [](std::string_view wire) {
    return ValidateUncompressedName(reinterpret_cast<const uint8_t*>(wire.data()), wire.size());
  };
  EXPECT_EQ(validate("\3www\7example\0"sv), 13u);
  EXPECT_EQ(validate("\0"sv), 1u);
  // Whatever follows the name (type, class) is not part of it.
  EXPECT_EQ(validate("\3www\0\0\1\0\1"sv), 5u);
  // A compression pointer, reserved label types (0x40, 0x80), an overrun,
  // no root label, an empty buffer.
  EXPECT_EQ(validate("\3www\xc0\x0c"sv), 0u);
  EXPECT_EQ(validate("\x40"s + std::string(64, 'a') + '\0'), 0u);
  EXPECT_EQ(validate("\x80\0"sv), 0u);
  EXPECT_EQ(validate("\5ab\0"sv), 0u);
  EXPECT_EQ(validate("\3www"sv), 0u);
  EXPECT_EQ(validate(""), 0u);
  // 255 octets pass, 256 do not.
  std::string at_limit = *NameFromText(Labels(3, 63) + "." + std::string(61, 'z'));
  EXPECT_EQ(validate(at_limit), 255u);
  std::string over = at_limit;
  over[3 * 64] = 62;
  over.insert(3 * 64 + 1, "z");
  ASSERT_EQ(over.size(), 256u);
  EXPECT_EQ(validate(over), 0u);
}

TEST(NameTest, TypeToText) {
  EXPECT_EQ(TypeToText(kTypeA), "A");
  EXPECT_EQ(TypeToText(kTypeAAAA), "AAAA");
  EXPECT_EQ(TypeToText(kTypeSOA), "SOA");
  EXPECT_EQ(TypeToText(65), "HTTPS");
  EXPECT_EQ(TypeToText(0), "TYPE0");
  EXPECT_EQ(TypeToText(65280), "TYPE65280");  // RFC 3597
}

}  // namespace
}  // namespace nodedns::dns
