#include "lib/dns/name.h"

#include <cctype>
#include <utility>

#include "absl/status/status.h"
#include "lib/dns/constants.h"

namespace nodedns::dns {

absl::StatusOr<std::string> NameFromText(std::string_view text) {
  std::string out;
  if (text.empty() || text == ".") return std::string(1, '\0');
  std::string label;
  auto flush = [&]() -> absl::Status {
    if (label.empty()) return absl::InvalidArgumentError("empty label in name '" + std::string(text) + "'");
    if (label.size() > kMaxLabelLength) {
      return absl::InvalidArgumentError("label longer than 63 octets in name '" + std::string(text) + "'");
    }
    out.push_back(static_cast<char>(label.size()));
    out += label;
    label.clear();
    return absl::OkStatus();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\\') {
      if (i + 3 < text.size() && std::isdigit(static_cast<unsigned char>(text[i + 1])) &&
          std::isdigit(static_cast<unsigned char>(text[i + 2])) &&
          std::isdigit(static_cast<unsigned char>(text[i + 3]))) {
        int v = (text[i + 1] - '0') * 100 + (text[i + 2] - '0') * 10 + (text[i + 3] - '0');
        if (v > 255) return absl::InvalidArgumentError("bad escape in name '" + std::string(text) + "'");
        label.push_back(static_cast<char>(v));
        i += 3;
      } else if (i + 1 < text.size()) {
        label.push_back(text[++i]);
      } else {
        return absl::InvalidArgumentError("trailing backslash in name '" + std::string(text) + "'");
      }
    } else if (c == '.') {
      if (auto s = flush(); !s.ok()) return s;
    } else {
      label.push_back(c);
    }
  }
  if (!label.empty()) {
    if (auto s = flush(); !s.ok()) return s;
  }
  out.push_back('\0');
  if (out.size() > kMaxNameLength) {
    return absl::InvalidArgumentError("name longer than 255 octets: '" + std::string(text) + "'");
  }
  return out;
}

std::string NameToText(std::string_view wire) {
  std::string out;
  size_t i = 0;
  while (i < wire.size()) {
    uint8_t len = static_cast<uint8_t>(wire[i]);
    if (len == 0) break;
    ++i;
    for (size_t j = 0; j < len && i < wire.size(); ++j, ++i) {
      unsigned char c = static_cast<unsigned char>(wire[i]);
      if (c == '.' || c == '\\') {
        out.push_back('\\');
        out.push_back(static_cast<char>(c));
      } else if (c < 0x21 || c > 0x7e) {
        char buf[5];
        snprintf(buf, sizeof(buf), "\\%03u", c);
        out += buf;
      } else {
        out.push_back(static_cast<char>(c));
      }
    }
    out.push_back('.');
  }
  return out.empty() ? "." : out;
}

void LowercaseInPlace(uint8_t* data, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    if (data[i] >= 'A' && data[i] <= 'Z') data[i] = static_cast<uint8_t>(data[i] + 32);
  }
}

std::string Lowercase(std::string_view wire) {
  std::string out(wire);
  LowercaseInPlace(reinterpret_cast<uint8_t*>(out.data()), out.size());
  return out;
}

bool NamesEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x += 32;
    if (y >= 'A' && y <= 'Z') y += 32;
    if (x != y) return false;
  }
  return true;
}

bool IsSubdomain(std::string_view name, std::string_view zone) {
  if (zone.size() > name.size()) return false;
  // Walk the labels of name until the remaining suffix has zone's length.
  size_t i = 0;
  while (name.size() - i > zone.size()) {
    uint8_t len = static_cast<uint8_t>(name[i]);
    if (len == 0) return false;
    i += 1 + len;
  }
  if (name.size() - i != zone.size()) return false;
  return NamesEqual(name.substr(i), zone);
}

int LabelCount(std::string_view wire) {
  int n = 0;
  size_t i = 0;
  while (i < wire.size() && wire[i] != 0) {
    i += 1 + static_cast<uint8_t>(wire[i]);
    ++n;
  }
  return n;
}

size_t ValidateUncompressedName(const uint8_t* data, size_t len) {
  size_t i = 0;
  while (true) {
    if (i >= len) return 0;
    uint8_t l = data[i];
    if (l == 0) {
      ++i;
      return i <= kMaxNameLength ? i : 0;
    }
    if (l > kMaxLabelLength) return 0;  // compression pointer or reserved label type
    i += 1 + l;
    if (i >= kMaxNameLength) return 0;
  }
}

std::string TypeToText(uint16_t type) {
  static constexpr std::pair<uint16_t, const char*> kNames[] = {
      {1, "A"},      {2, "NS"},     {5, "CNAME"},  {6, "SOA"},   {12, "PTR"},  {15, "MX"},   {16, "TXT"},
      {28, "AAAA"},  {33, "SRV"},   {35, "NAPTR"}, {39, "DNAME"}, {43, "DS"},  {46, "RRSIG"}, {48, "DNSKEY"},
      {52, "TLSA"},  {64, "SVCB"},  {65, "HTTPS"}, {99, "SPF"},  {255, "ANY"}, {257, "CAA"}};
  for (const auto& [t, name] : kNames) {
    if (t == type) return name;
  }
  return "TYPE" + std::to_string(type);
}

}  // namespace nodedns::dns
