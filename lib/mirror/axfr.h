#ifndef NODEDNS_LIB_MIRROR_AXFR_H_
#define NODEDNS_LIB_MIRROR_AXFR_H_

// The wire side of the zone mirror (README "Mirrored zones"): the SOA serial
// of a zone (one UDP query, TCP if truncated), and a whole zone by AXFR
// (RFC 5936) over one TCP connection, bounded in records, bytes and time.
// A transfer is all or nothing: it succeeds only when the stream starts with
// the zone's SOA and ends with the same SOA again; a cut, a refusal, a
// message that does not parse or a zone over a cap is an error, and nothing
// of it is returned.
//
// Threading: blocking calls, for the mirror's own thread; no shared state.

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/types/span.h"

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lib/common/socket_address.h"
#include "lib/dns/message.h"
#include "lib/mirror/options.h"

namespace nodedns::mirror {

struct Zone {
  uint32_t serial = 0;
  std::vector<dns::Record> records;  // without the two SOA records that frame the stream
  dns::Record soa;
  size_t bytes = 0;  // received
};

// Builds a Zone from the messages of an AXFR answer, in order: the checks
// and caps of a transfer without the socket (Transfer feeds it; the fuzzer
// too).
class ZoneAssembler {
 public:
  ZoneAssembler(std::string zone_wire, uint16_t id, const TransferLimits& limits)
      : zone_wire_(std::move(zone_wire)), id_(id), limits_(limits) {}
  // One message. An error ends the transfer; nothing of it is to be used.
  absl::Status Feed(absl::Span<const uint8_t> message);
  // The closing SOA has been seen: the zone is whole.
  bool done() const { return done_; }
  Zone Take() { return std::move(zone_); }

 private:
  std::string zone_wire_;
  uint16_t id_;
  TransferLimits limits_;
  Zone zone_;
  bool opened_ = false;
  bool done_ = false;
};

// The serial of the SOA in `rdata` (names uncompressed, as dns::Record keeps
// them); nullopt if it is not a well-formed SOA RDATA.
std::optional<uint32_t> SoaSerial(const std::string& rdata);

// Asks `server` for the SOA of `zone_wire` (lowercased wire name). Both
// calls give up (Cancelled) within 100 ms of *cancel turning true.
absl::StatusOr<uint32_t> QuerySerial(const SocketAddress& server, const std::string& zone_wire, absl::Duration timeout,
                                     const std::atomic<bool>* cancel = nullptr);

// Transfers `zone_wire` from `server`.
absl::StatusOr<Zone> Transfer(const SocketAddress& server, const std::string& zone_wire, const TransferLimits& limits,
                              const std::atomic<bool>* cancel = nullptr);

}  // namespace nodedns::mirror

#endif  // NODEDNS_LIB_MIRROR_AXFR_H_
