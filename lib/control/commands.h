#ifndef NODEDNS_LIB_CONTROL_COMMANDS_H_
#define NODEDNS_LIB_CONTROL_COMMANDS_H_

// The control protocol's requests, typed. A request line is parsed once, here,
// into one of the structs below: every field is checked for its type and
// range, a missing required field or an unknown one is an error, and the error
// names the command and the field ("dump: \"limit\" must be an integer from 1
// to 100000, got -1"). Nothing downstream looks at the JSON again.
//
// HandleControlRequest is the whole daemon side of one request: parse,
// dispatch to a ControlTarget, render the answer. It is also the control
// plane's exception boundary: whatever a handler throws is logged and
// answered as {"ok": false, "error": "internal error: ..."}; nothing reaches
// the event loop.
//
// Threading: the control loop's thread (the target is not thread-safe).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "lib/common/socket_address.h"
#include "lib/control/peer.h"
#include "lib/control/stream_server.h"

namespace nodedns::control {

class ControlTarget;

struct StatsRequest {};
struct UpstreamsRequest {};
struct ReloadRequest {};
struct SnapshotRequest {};
struct HealthRequest {};

struct DumpRequest {
  std::string name_text;   // as given, "" for every name
  std::string name_lower;  // wire form, lower case; "" for every name
  uint64_t limit = 0;      // entries listed at most (all are counted)
};

struct FlushRequest {
  bool all = false;        // else name_* is set
  std::string name_text;
  std::string name_lower;  // wire form, lower case
};

// From a starting nodedns (see "Zero-gap upgrades" in README.md).
struct HandoverRequest {
  pid_t pid = 0;  // as the requester sees itself (its own PID namespace)
  int64_t protocol = 0;
  std::string version;
};

struct ReleaseRequest {
  pid_t pid = 0;
  int64_t protocol = 0;
  std::string version;
  std::vector<SocketAddress> addresses;  // the DNS addresses the requester serves
};

using ControlRequest = std::variant<StatsRequest, UpstreamsRequest, DumpRequest, FlushRequest, ReloadRequest,
                                    SnapshotRequest, HealthRequest, HandoverRequest, ReleaseRequest>;

// Parses one request (a JSON object, with or without the trailing newline).
// InvalidArgument naming the command and field on anything unexpected.
absl::StatusOr<ControlRequest> ParseControlRequest(std::string_view line);

// The request builders a client uses, so that dnsctl and a successor send
// exactly what ParseControlRequest accepts.
nlohmann::json HandoverRequestJson(const HandoverRequest& r);
nlohmann::json ReleaseRequestJson(const ReleaseRequest& r);

// One JSON object and the newline that ends it. Never throws: strings that
// are not UTF-8 (a path from the command line) are rendered with U+FFFD.
std::string RenderAnswer(const nlohmann::json& answer);
nlohmann::json ErrorAnswer(std::string_view message);

// The control socket's limits (README "Limits"): a request within 2 s of
// connecting and in 64 KiB, its answer written within 60 s (a snapshot of a
// large cache), 64 connections, the oldest idle one cut for a newcomer.
StreamServerOptions ControlSocketOptions();

// Answers `line` from `peer` through `respond` (now, or later for snapshot);
// `respond` gets the rendered answer, newline included.
void HandleControlRequest(std::string_view line, const PeerCredentials& peer, ControlTarget& target,
                          const std::function<void(std::string)>& respond);

}  // namespace nodedns::control

#endif  // NODEDNS_LIB_CONTROL_COMMANDS_H_
