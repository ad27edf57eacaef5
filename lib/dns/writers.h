#ifndef NODEDNS_LIB_DNS_WRITERS_H_
#define NODEDNS_LIB_DNS_WRITERS_H_

// The messages nodedns writes itself, without building a Message: the query
// it sends upstream (and the check that a packet answers it), error answers
// to clients, and the OPT record both carry. Each writes into a caller's
// buffer and allocates nothing.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/types/span.h"
#include "lib/dns/constants.h"
#include "lib/dns/query_view.h"

namespace nodedns::dns {

// Writes an OPT record (RFC 6891) at `out`: our UDP size, the upper rcode
// bits, DO, and one EDE option when ede_code >= 0. Needs 17 octets; returns
// the length written (11 or 17).
size_t WriteOpt(uint8_t* out, uint16_t udp_size, uint8_t extended_rcode, bool dnssec_ok, int ede_code);

// Room WriteQuery needs.
inline constexpr size_t kMaxQuerySize = kHeaderSize + kMaxNameLength + 4 + 11;

// Writes the query nodedns sends upstream: ID 0 (the transport sets it), RD
// (and CD if asked), one question, and an OPT record with our buffer size and
// the DO bit. `qname` is uncompressed wire format. `out` has kMaxQuerySize
// octets; returns the length.
size_t WriteQuery(std::string_view qname, uint16_t qtype, uint16_t qclass, bool checking_disabled, bool dnssec_ok,
                  uint8_t* out);

// True if `answer` is a response (QR=1, QUERY) to `query` (one we wrote with
// WriteQuery): one question, the same name in any letter case, type and
// class. It does not look past the question; the resolver's full parse does.
bool IsAnswerTo(absl::Span<const uint8_t> query, absl::Span<const uint8_t> answer);

// Writes an answer with no records and the given rcode for `query` into out:
// the client's ID, opcode, RD and CD, RA set, the question when `q` is known
// to be well-formed (else none), and an OPT record when the query had one
// (with the extended rcode bits and an EDE option when ede_code >= 0).
// Returns the length written, 0 if `cap` is too small.
size_t WriteErrorAnswer(const uint8_t* query, size_t query_len, const QueryView* q, uint16_t rcode,
                        int ede_code, uint16_t server_udp_size, uint8_t* out, size_t cap);

// Writes a NODATA answer (NOERROR, no answer records) for the well-formed
// query `q`, with a synthesised SOA in the authority section for the zone
// whose name is the last `zone_length` octets of the question's name (RFC
// 2308: the SOA's MINIMUM and TTL, `ttl`, bound how long it is cached).
// Header, question and OPT as WriteErrorAnswer. Returns the length written, 0
// if `cap` is too small.
size_t WriteNoDataAnswer(const uint8_t* query, const QueryView& q, size_t zone_length, uint32_t ttl,
                         uint16_t server_udp_size, uint8_t* out, size_t cap);

}  // namespace nodedns::dns

#endif  // NODEDNS_LIB_DNS_WRITERS_H_
