#include "lib/common/socket_address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "absl/status/status.h"

namespace nodedns {
namespace {

absl::StatusOr<uint16_t> ParsePort(std::string_view text, std::string_view whole) {
  int port = -1;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError("invalid port in address '" + std::string(whole) + "'");
  }
  return static_cast<uint16_t>(port);
}

}  // namespace

absl::StatusOr<SocketAddress> SocketAddress::Parse(std::string_view text, int default_port) {
  std::string host;
  std::string_view port_text;
  bool have_port = false;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return absl::InvalidArgumentError("missing ']' in address '" + std::string(text) + "'");
    }
    host = std::string(text.substr(1, close - 1));
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return absl::InvalidArgumentError("expected ':PORT' after ']' in '" + std::string(text) + "'");
      }
      port_text = rest.substr(1);
      have_port = true;
    }
  } else {
    size_t colon = text.rfind(':');
    if (colon != std::string_view::npos && text.find(':') == colon) {
      host = std::string(text.substr(0, colon));
      port_text = text.substr(colon + 1);
      have_port = true;
    } else {
      host = std::string(text);  // IPv4 without port, or bare IPv6
    }
  }
  uint16_t port = 0;
  if (have_port) {
    auto p = ParsePort(port_text, text);
    if (!p.ok()) return p.status();
    port = *p;
  } else if (default_port >= 0) {
    port = static_cast<uint16_t>(default_port);
  } else {
    return absl::InvalidArgumentError("missing port in address '" + std::string(text) +
                                      "' (expected ADDR:PORT or [V6ADDR]:PORT)");
  }
  SocketAddress out;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage_);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage_);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    return out;
  }
  out.storage_ = {};
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    return out;
  }
  return absl::InvalidArgumentError("invalid IP address '" + host + "' in '" + std::string(text) + "'");
}

SocketAddress SocketAddress::FromSockaddr(const sockaddr* sa) {
  SocketAddress out;
  if (sa == nullptr) return out;
  if (sa->sa_family == AF_INET) {
    std::memcpy(&out.storage_, sa, sizeof(sockaddr_in));
  } else if (sa->sa_family == AF_INET6) {
    std::memcpy(&out.storage_, sa, sizeof(sockaddr_in6));
  }
  return out;
}

socklen_t SocketAddress::length() const {
  return storage_.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

uint16_t SocketAddress::port() const {
  if (storage_.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  }
  if (storage_.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return 0;
}

void SocketAddress::set_port(uint16_t port) {
  if (storage_.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
  } else if (storage_.ss_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
  }
}

std::string SocketAddress::HostString() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (storage_.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof(buf));
  } else if (storage_.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf, sizeof(buf));
  } else {
    return "invalid";
  }
  return buf;
}

std::string SocketAddress::ToString() const {
  // Built with append: GCC 12 warns falsely (-Wrestrict) on chained operator+
  // (https://gcc.gnu.org/bugzilla/show_bug.cgi?id=105651).
  std::string out;
  bool v6 = storage_.ss_family == AF_INET6;
  if (v6) out.append("[");
  out.append(HostString());
  out.append(v6 ? "]:" : ":");
  out.append(std::to_string(port()));
  return out;
}

}  // namespace nodedns
