#ifndef NODEDNS_LIB_DNS_MESSAGE_H_
#define NODEDNS_LIB_DNS_MESSAGE_H_

// Tier one of the wire code: a bounds-checked parser and a writer for whole
// DNS messages. Used off the hot path: for upstream answers (to build cache
// images), for upstream queries, and by tests. The cache-hit path uses the
// in-place helpers of query_view.h and answer.h instead.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "lib/dns/constants.h"

namespace nodedns::dns {

struct Question {
  std::string name;  // uncompressed wire format
  uint16_t type = kTypeA;
  uint16_t klass = kClassIN;
};

struct Record {
  std::string name;  // uncompressed wire format
  uint16_t type = 0;
  uint16_t klass = kClassIN;
  uint32_t ttl = 0;
  // RDATA. For the RFC 1035 types that may carry compressed names (NS, CNAME,
  // SOA, PTR, MX, ...) and SRV, names inside are stored decompressed, so the
  // bytes stay valid when the record is written at another offset.
  std::string rdata;
};

struct EdnsOption {
  uint16_t code = 0;
  std::string data;
};

struct Edns {
  uint16_t udp_size = kDefaultEdnsPayload;
  uint8_t extended_rcode = 0;  // upper 8 bits of the 12-bit rcode
  uint8_t version = 0;
  bool dnssec_ok = false;
  std::vector<EdnsOption> options;
};

struct Message {
  uint16_t id = 0;
  uint16_t flags = 0;
  std::vector<Question> questions;
  std::vector<Record> answers;
  std::vector<Record> authority;
  std::vector<Record> additional;  // never contains the OPT record: see edns
  std::optional<Edns> edns;

  uint16_t rcode() const {
    return static_cast<uint16_t>((flags & kRcodeMask) | (edns ? edns->extended_rcode << 4 : 0));
  }
  void set_rcode(uint16_t rcode);
};

// Parses a whole message. Every length and count is checked against the
// buffer; names are decompressed with pointer-loop protection (a pointer must
// point before the start of the labels that led to it), labels <= 63 and
// names <= 255 octets. At most one OPT record, only in the additional section
// and owned by the root. Trailing bytes after the last record are an error.
absl::StatusOr<Message> ParseMessage(absl::Span<const uint8_t> wire);

struct WriteOptions {
  size_t max_size = kMaxMessageSize;
  bool compress = true;
  // When set, receives the offset of every record's TTL field (OPT excluded),
  // so the cache can age TTLs in place.
  std::vector<uint16_t>* ttl_offsets = nullptr;
};

// Serializes `message`. Fails with ResourceExhausted when the result would
// exceed options.max_size, InvalidArgument on a malformed field.
absl::StatusOr<std::vector<uint8_t>> WriteMessage(const Message& message,
                                                  const WriteOptions& options = {});

// Builds an EDE option (RFC 8914).
EdnsOption MakeExtendedError(uint16_t info_code, std::string_view text = {});

// Reads a possibly compressed name at `*offset` in `wire`, appending the
// uncompressed form to `out` and advancing `*offset` past the name as it is
// stored. Exposed for the fuzz target and tests.
absl::Status ReadName(absl::Span<const uint8_t> wire, size_t* offset, std::string* out);

}  // namespace nodedns::dns

#endif  // NODEDNS_LIB_DNS_MESSAGE_H_
