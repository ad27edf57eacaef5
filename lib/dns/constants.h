#ifndef NODEDNS_LIB_DNS_CONSTANTS_H_
#define NODEDNS_LIB_DNS_CONSTANTS_H_

#include <cstddef>
#include <cstdint>

namespace nodedns::dns {

inline constexpr size_t kHeaderSize = 12;
inline constexpr size_t kMaxNameLength = 255;   // wire octets, including the root label
inline constexpr size_t kMaxLabelLength = 63;
inline constexpr size_t kMaxMessageSize = 65535;
inline constexpr uint16_t kMinUdpPayload = 512;  // without EDNS (RFC 1035 4.2.1)
inline constexpr uint16_t kDefaultEdnsPayload = 1232;  // DNS flag day 2020

// Header flag bits (second 16-bit word of the header).
inline constexpr uint16_t kFlagQR = 0x8000;
inline constexpr uint16_t kFlagAA = 0x0400;
inline constexpr uint16_t kFlagTC = 0x0200;
inline constexpr uint16_t kFlagRD = 0x0100;
inline constexpr uint16_t kFlagRA = 0x0080;
inline constexpr uint16_t kFlagZ = 0x0040;
inline constexpr uint16_t kFlagAD = 0x0020;
inline constexpr uint16_t kFlagCD = 0x0010;
inline constexpr uint16_t kOpcodeMask = 0x7800;
inline constexpr uint16_t kRcodeMask = 0x000f;

inline constexpr uint16_t OpcodeOf(uint16_t flags) { return (flags & kOpcodeMask) >> 11; }

enum Rcode : uint16_t {
  kNoError = 0,
  kFormErr = 1,
  kServFail = 2,
  kNxDomain = 3,
  kNotImp = 4,
  kRefused = 5,
  kBadVers = 16,  // extended, needs EDNS
};

enum Type : uint16_t {
  kTypeA = 1,
  kTypeNS = 2,
  kTypeMD = 3,
  kTypeMF = 4,
  kTypeCNAME = 5,
  kTypeSOA = 6,
  kTypeMB = 7,
  kTypeMG = 8,
  kTypeMR = 9,
  kTypePTR = 12,
  kTypeHINFO = 13,
  kTypeMINFO = 14,
  kTypeMX = 15,
  kTypeTXT = 16,
  kTypeAAAA = 28,
  kTypeSRV = 33,
  kTypeDNAME = 39,
  kTypeOPT = 41,
  kTypeRRSIG = 46,
  kTypeNSEC = 47,
  kTypeNSEC3 = 50,
  kTypeIXFR = 251,
  kTypeAXFR = 252,
  kTypeANY = 255,
};

inline constexpr uint16_t kClassIN = 1;

// EDNS (RFC 6891) and Extended DNS Errors (RFC 8914).
inline constexpr uint32_t kEdnsDoBit = 0x8000;
inline constexpr uint16_t kOptionExtendedError = 15;
enum ExtendedError : uint16_t {
  kEdeOther = 0,
  kEdeStaleAnswer = 3,
  kEdeCachedError = 13,
  kEdeNotReady = 14,
  kEdeStaleNxDomain = 19,
  kEdeNoReachableAuthority = 22,
  kEdeNetworkError = 23,
};

inline uint16_t Read16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t Read32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline void Write16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void Write32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

}  // namespace nodedns::dns

#endif  // NODEDNS_LIB_DNS_CONSTANTS_H_
