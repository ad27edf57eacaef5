#include "lib/common/socket_address.h"

#include <arpa/inet.h>

#include <cstring>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nodedns {
namespace {

using ::testing::HasSubstr;

SocketAddress MustParse(std::string_view text, int default_port = -1) {
  auto a = SocketAddress::Parse(text, default_port);
  EXPECT_TRUE(a.ok()) << text << ": " << a.status();
  return a.ok() ? *a : SocketAddress();
}

std::string ParseError(std::string_view text, int default_port = -1) {
  auto a = SocketAddress::Parse(text, default_port);
  EXPECT_FALSE(a.ok()) << text << " parsed as " << (a.ok() ? a->ToString() : "");
  EXPECT_TRUE(a.ok() || absl::IsInvalidArgument(a.status())) << a.status();
  return a.ok() ? "" : std::string(a.status().message());
}

TEST(SocketAddressTest, ParsesIpv4WithPort) {
  SocketAddress a = MustParse("192.0.2.1:53");
  EXPECT_TRUE(a.is_valid());
  EXPECT_EQ(a.family(), AF_INET);
  EXPECT_EQ(a.port(), 53);
  EXPECT_EQ(a.length(), sizeof(sockaddr_in));
  EXPECT_EQ(a.HostString(), "192.0.2.1");
  EXPECT_EQ(a.ToString(), "192.0.2.1:53");
  EXPECT_EQ(MustParse("0.0.0.0:0").ToString(), "0.0.0.0:0");
  EXPECT_EQ(MustParse("255.255.255.255:65535").port(), 65535);
  // Leading zeros in the port are a number like any other.
  EXPECT_EQ(MustParse("127.0.0.1:0053").port(), 53);
}

TEST(SocketAddressTest, ParsesIpv6InBrackets) {
  SocketAddress a = MustParse("[2001:db8::1]:5353");
  EXPECT_EQ(a.family(), AF_INET6);
  EXPECT_EQ(a.port(), 5353);
  EXPECT_EQ(a.length(), sizeof(sockaddr_in6));
  EXPECT_EQ(a.HostString(), "2001:db8::1");
  EXPECT_EQ(a.ToString(), "[2001:db8::1]:5353");
  // Printed in the canonical form (RFC 5952), whatever the input's.
  EXPECT_EQ(MustParse("[2001:0DB8:0:0:0:0:0:0001]:53").ToString(), "[2001:db8::1]:53");
  EXPECT_EQ(MustParse("[::]:1").ToString(), "[::]:1");
  EXPECT_EQ(MustParse("[::ffff:192.0.2.1]:53").HostString(), "::ffff:192.0.2.1");
}

TEST(SocketAddressTest, DefaultPortWhenOmitted) {
  EXPECT_EQ(MustParse("192.0.2.1", 53).ToString(), "192.0.2.1:53");
  EXPECT_EQ(MustParse("::1", 53).ToString(), "[::1]:53");
  EXPECT_EQ(MustParse("[::1]", 53).ToString(), "[::1]:53");
  EXPECT_EQ(MustParse("fe80::1:2", 0).ToString(), "[fe80::1:2]:0");
  // An explicit port wins over the default.
  EXPECT_EQ(MustParse("192.0.2.1:5353", 53).port(), 5353);
  EXPECT_EQ(MustParse("[::1]:5353", 53).port(), 5353);
}

TEST(SocketAddressTest, MissingPortWithoutDefault) {
  for (const char* text : {"192.0.2.1", "::1", "[::1]", "2001:db8::1"}) {
    EXPECT_THAT(ParseError(text), HasSubstr("missing port")) << text;
  }
}

TEST(SocketAddressTest, RefusesBadPorts) {
  for (const char* text : {"192.0.2.1:", "192.0.2.1:65536", "192.0.2.1:-1", "192.0.2.1:+53", "192.0.2.1:53x",
                           "192.0.2.1: 53", "192.0.2.1:99999999999999999999", "[::1]:", "[::1]:http"}) {
    EXPECT_THAT(ParseError(text, 53), HasSubstr("invalid port")) << text;
  }
}

TEST(SocketAddressTest, RefusesBadAddresses) {
  EXPECT_THAT(ParseError("1.2.3:53"), HasSubstr("invalid IP address '1.2.3'"));
  EXPECT_THAT(ParseError("256.0.0.1:53"), HasSubstr("invalid IP address"));
  EXPECT_THAT(ParseError("localhost:53"), HasSubstr("invalid IP address 'localhost'"));  // no name lookups
  EXPECT_THAT(ParseError(":53"), HasSubstr("invalid IP address ''"));
  EXPECT_THAT(ParseError("", 53), HasSubstr("invalid IP address"));
  EXPECT_THAT(ParseError("[::1", 53), HasSubstr("missing ']'"));
  EXPECT_THAT(ParseError("[::1]53"), HasSubstr("expected ':PORT' after ']'"));
  EXPECT_THAT(ParseError("[::g]:53"), HasSubstr("invalid IP address '::g'"));
  EXPECT_THAT(ParseError("[]:53"), HasSubstr("invalid IP address ''"));
  // Zone indexes (fe80::1%eth0) are not supported.
  EXPECT_THAT(ParseError("[fe80::1%eth0]:53"), HasSubstr("invalid IP address"));
  // An IPv6 address with a port needs brackets: "2001:db8::1:53" is an
  // address, not 2001:db8::1 port 53.
  EXPECT_EQ(MustParse("2001:db8::1:53", 0).ToString(), "[2001:db8::1:53]:0");
}

TEST(SocketAddressTest, DefaultIsInvalid) {
  SocketAddress a;
  EXPECT_FALSE(a.is_valid());
  EXPECT_EQ(a.port(), 0);
  EXPECT_EQ(a.HostString(), "invalid");
  a.set_port(53);  // no family: nothing to set
  EXPECT_EQ(a.port(), 0);
}

TEST(SocketAddressTest, SetPortKeepsTheHost) {
  SocketAddress v4 = MustParse("192.0.2.1:53");
  v4.set_port(8053);
  EXPECT_EQ(v4.ToString(), "192.0.2.1:8053");
  SocketAddress v6 = MustParse("[::1]:53");
  v6.set_port(0);
  EXPECT_EQ(v6.ToString(), "[::1]:0");
}

TEST(SocketAddressTest, FromSockaddrRoundTrip) {
  for (const char* text : {"192.0.2.1:53", "[2001:db8::53]:8053"}) {
    SocketAddress a = MustParse(text);
    SocketAddress b = SocketAddress::FromSockaddr(a.sockaddr_ptr());
    EXPECT_EQ(b.ToString(), text);
    EXPECT_EQ(b, a);
    EXPECT_EQ(b.length(), a.length());
    EXPECT_EQ(std::memcmp(b.sockaddr_ptr(), a.sockaddr_ptr(), a.length()), 0);
  }
  // From a sockaddr the kernel filled in.
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(853);
  ASSERT_EQ(inet_pton(AF_INET6, "2001:db8::2", &sin6.sin6_addr), 1);
  EXPECT_EQ(SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&sin6)).ToString(), "[2001:db8::2]:853");
  // Other families and null give an invalid address.
  sockaddr_storage unix_addr{};
  unix_addr.ss_family = AF_UNIX;
  EXPECT_FALSE(SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&unix_addr)).is_valid());
  EXPECT_FALSE(SocketAddress::FromSockaddr(nullptr).is_valid());
}

TEST(SocketAddressTest, EqualityComparesAddressAndPort) {
  EXPECT_EQ(MustParse("192.0.2.1:53"), MustParse("192.0.2.1", 53));
  EXPECT_FALSE(MustParse("192.0.2.1:53") == MustParse("192.0.2.1:54"));
  EXPECT_FALSE(MustParse("192.0.2.1:53") == MustParse("192.0.2.2:53"));
  // The same bits in two families are different addresses.
  EXPECT_FALSE(MustParse("0.0.0.0:53") == MustParse("[::]:53"));
}

}  // namespace
}  // namespace nodedns
