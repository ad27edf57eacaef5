#ifndef NODEDNS_TESTS_SUPPORT_DNS_CLIENT_H_
#define NODEDNS_TESTS_SUPPORT_DNS_CLIENT_H_

// The tests' own DNS client: builds queries and exchanges them over real
// UDP and TCP sockets on loopback.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lib/dns/message.h"

namespace nodedns::testing {

struct QueryOptions {
  uint16_t id = 0x1234;
  bool edns = true;
  bool dnssec_ok = false;
  bool checking_disabled = false;
  uint16_t udp_size = 1232;
  uint8_t edns_version = 0;
};

std::vector<uint8_t> MakeQuery(const std::string& name, uint16_t type, const QueryOptions& o = {});

// A socket of `type` (SOCK_DGRAM, SOCK_STREAM) connected to 127.0.0.1:port,
// or -1.
int ConnectLoopback(int type, uint16_t port);
// A 127.0.0.1 port free for both UDP and TCP now (released again: the
// caller's server binds it a moment later); 0 if none was found.
uint16_t FreeLoopbackPort();

// Sends one datagram to host:port and waits for one answer.
std::optional<std::vector<uint8_t>> UdpExchange(const std::string& host, uint16_t port,
                                                const std::vector<uint8_t>& query, int timeout_ms = 2000);
// One framed query on a new TCP connection; waits for one framed answer.
std::optional<std::vector<uint8_t>> TcpExchange(const std::string& host, uint16_t port,
                                                const std::vector<uint8_t>& query, int timeout_ms = 2000);
// Several queries written at once on one connection; returns the answers in
// the order they arrived (empty on error or timeout).
std::vector<std::vector<uint8_t>> TcpPipeline(const std::string& host, uint16_t port,
                                              const std::vector<std::vector<uint8_t>>& queries, int timeout_ms = 3000);

// Parses an answer, failing the current test when it does not parse.
dns::Message Parse(const std::vector<uint8_t>& wire);

// Runs a shell command and returns its standard output.
std::string RunCommand(const std::string& command, int* exit_code = nullptr);

}  // namespace nodedns::testing

#endif  // NODEDNS_TESTS_SUPPORT_DNS_CLIENT_H_
