#ifndef NODEDNS_LIB_DNS_NAME_H_
#define NODEDNS_LIB_DNS_NAME_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace nodedns::dns {

// Names are handled as uncompressed wire format ("\3www\7example\3com\0")
// held in std::string. These helpers convert and compare them.

// "www.example.com" or "www.example.com." -> wire. "." and "" are the root.
// Supports \DDD and \c escapes as in zone files.
absl::StatusOr<std::string> NameFromText(std::string_view text);
// Wire -> "www.example.com." (root is "."). Non-printable octets become \DDD.
std::string NameToText(std::string_view wire);
// "A", "AAAA", ... for common types, else "TYPE65280" (RFC 3597).
std::string TypeToText(uint16_t type);
// ASCII lower-casing of a wire name (label length octets are <= 63 and never
// letters, so the whole buffer can be folded).
void LowercaseInPlace(uint8_t* data, size_t len);
std::string Lowercase(std::string_view wire);
// Case-insensitive equality of two wire names.
bool NamesEqual(std::string_view a, std::string_view b);
// True if `name` equals `zone` or lies below it (both wire, any case).
bool IsSubdomain(std::string_view name, std::string_view zone);
// Number of labels, root excluded.
int LabelCount(std::string_view wire);
// Validates an uncompressed wire name in a buffer and returns its length, or
// 0 if it is malformed (too long, bad label, compression pointer, overrun).
size_t ValidateUncompressedName(const uint8_t* data, size_t len);

}  // namespace nodedns::dns

#endif  // NODEDNS_LIB_DNS_NAME_H_
