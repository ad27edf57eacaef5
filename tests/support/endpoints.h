#ifndef NODEDNS_TESTS_SUPPORT_ENDPOINTS_H_
#define NODEDNS_TESTS_SUPPORT_ENDPOINTS_H_

// Raw clients for a daemon's control socket and HTTP endpoint, for tests that
// send what dnsctl and Prometheus never would, and hold connections idle.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace nodedns::testing {

// One request line on a new connection to the control socket; the whole
// answer parsed (discarded JSON if none or not JSON).
nlohmann::json ControlExchange(const std::string& socket_path, const std::string& line);

// One HTTP request on a new connection to "127.0.0.1:PORT"; the whole
// response ("" if the connection failed or nothing came within `timeout_ms`).
std::string HttpExchange(const std::string& address, const std::string& request, int timeout_ms = 5000);
std::string HttpGet(const std::string& address, const std::string& path, int timeout_ms = 5000);

// A connection that sends nothing: to the control socket (a path) or the
// HTTP endpoint ("127.0.0.1:PORT"). -1 if it could not connect.
int ConnectIdleUnix(const std::string& socket_path);
int ConnectIdleTcp(const std::string& address);
// True once the peer has closed `fd` (reads EOF or an error), without waiting.
bool ClosedByPeer(int fd);

// How many descriptors process `pid` has open.
int OpenDescriptors(int pid);

}  // namespace nodedns::testing

#endif  // NODEDNS_TESTS_SUPPORT_ENDPOINTS_H_
