#ifndef NODEDNS_LIB_CONTROL_PROTOCOL_H_
#define NODEDNS_LIB_CONTROL_PROTOCOL_H_

// The control protocol's vocabulary, shared by the daemon (commands.cc),
// dnsctl and a starting nodedns that takes over: one JSON object per line,
// {"command": NAME, FIELD: VALUE...}, answered by one JSON object with "ok".
// The fields each command accepts, their types and ranges are in
// commands.h; anything else is refused with an error naming the field.

#include <cstddef>
#include <cstdint>

namespace nodedns::control::protocol {

// Commands.
inline constexpr char kStats[] = "stats";
inline constexpr char kUpstreams[] = "upstreams";
inline constexpr char kDump[] = "dump";
inline constexpr char kFlush[] = "flush";
inline constexpr char kReload[] = "reload";
inline constexpr char kSnapshot[] = "snapshot";
inline constexpr char kHealth[] = "health";
// Between nodedns processes (zero-gap upgrades), never sent by dnsctl.
inline constexpr char kHandover[] = "handover";
inline constexpr char kRelease[] = "release";

// Request fields.
inline constexpr char kCommand[] = "command";
inline constexpr char kName[] = "name";    // dump, flush: a domain name
inline constexpr char kLimit[] = "limit";  // dump: entries listed at most
inline constexpr char kAll[] = "all";      // flush: true to empty the cache
inline constexpr char kPid[] = "pid";      // handover, release: the requester's PID
inline constexpr char kVersion[] = "version";    // handover, release: the requester's NODEDNS_VERSION
inline constexpr char kProtocol[] = "protocol";  // handover, release: kHandoverProtocol
inline constexpr char kAddresses[] = "addresses";  // release: the DNS addresses the requester serves

// Answer fields every command shares.
inline constexpr char kOk[] = "ok";
inline constexpr char kError[] = "error";

// Bounds of request fields.
inline constexpr uint64_t kDefaultDumpLimit = 10000;
inline constexpr uint64_t kMaxDumpLimit = 100000;  // a longer answer would stall the control loop
inline constexpr int64_t kMaxPid = 4194304;  // PID_MAX_LIMIT on 64-bit Linux
inline constexpr size_t kMaxAddresses = 64;

// The handover exchange's version. A predecessor refuses a successor that
// speaks another one (its requests would mean something else).
inline constexpr int64_t kHandoverProtocol = 1;

}  // namespace nodedns::control::protocol

#endif  // NODEDNS_LIB_CONTROL_PROTOCOL_H_
