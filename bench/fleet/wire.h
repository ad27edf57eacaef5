#ifndef NODEDNS_BENCH_FLEET_WIRE_H_
#define NODEDNS_BENCH_FLEET_WIRE_H_

// The little DNS wire code the fleet benchmark needs: a stub's query, and the
// stand-ins' answers (A, NXDOMAIN/NODATA with an SOA, SERVFAIL, an SOA for a
// probe). Self-contained on purpose: the benchmark measures the daemon from
// outside, as pods and a cluster DNS would, and does not share the codec it
// measures.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace nodedns::fleet {

inline constexpr uint16_t kTypeA = 1;
inline constexpr uint16_t kTypeSoa = 6;
inline constexpr uint16_t kRcodeNoError = 0;
inline constexpr uint16_t kRcodeServFail = 2;
inline constexpr uint16_t kRcodeNxDomain = 3;
inline constexpr size_t kMaxPacket = 1232;

// What a stub reads from an answer.
struct ParsedAnswer {
  uint16_t id = 0;
  uint16_t rcode = 0;
  std::string qname;  // lowercased, no trailing dot
  bool has_a = false;
  uint32_t a = 0;  // host order
};

// What a server reads from a query.
struct ParsedQuery {
  uint16_t id = 0;
  std::string qname;  // lowercased, no trailing dot ("" for the root)
  uint16_t qtype = 0;
  size_t question_end = 0;  // offset just past the question
  bool has_opt = false;
};

// A stub's query (RD, no EDNS: glibc's default) for `name` (no trailing
// dot). Returns its length, 0 if it does not fit.
size_t WriteQuery(uint16_t id, std::string_view name, uint16_t qtype, uint8_t* out, size_t cap);

// False for anything that is not a well-formed response with one question.
bool ParseAnswer(const uint8_t* p, size_t n, ParsedAnswer* out);
// False for anything that is not a query with one question.
bool ParseQuery(const uint8_t* p, size_t n, ParsedQuery* out);

// A server's answer to `query` (header and question copied, so the
// question's letter case is echoed): `rcode`, then an A record when `a` is
// set, else (for NOERROR or NXDOMAIN) the zone's SOA in the authority
// section (RFC 2308), or in the answer section when `soa_answer`. An OPT
// record when the query had one. Returns the length, 0 if it does not fit.
struct AnswerSpec {
  uint16_t rcode = kRcodeNoError;
  const uint32_t* a = nullptr;
  bool soa_answer = false;
  std::string_view zone;  // the SOA's owner ("" for the root)
  uint32_t ttl = 30;
};
size_t WriteAnswer(const uint8_t* query, const ParsedQuery& q, const AnswerSpec& spec, uint8_t* out, size_t cap);

}  // namespace nodedns::fleet

#endif  // NODEDNS_BENCH_FLEET_WIRE_H_
