#include "lib/server/query_log.h"

#include <spdlog/spdlog.h>

#include <string>

#include "lib/dns/constants.h"
#include "lib/dns/message.h"
#include "lib/dns/name.h"

namespace nodedns::server {

void QueryLog::Log(const SocketAddress& client, bool tcp, absl::Span<const uint8_t> answer, int64_t latency_ns) {
  std::string name = "?";
  std::string type = "?";
  if (answer.size() >= dns::kHeaderSize && dns::Read16(answer.data() + 4) > 0) {
    size_t offset = dns::kHeaderSize;
    std::string wire;
    if (dns::ReadName(answer, &offset, &wire).ok() && offset + 4 <= answer.size()) {
      name = dns::NameToText(wire);
      type = dns::TypeToText(dns::Read16(answer.data() + offset));
    }
  }
  static constexpr const char* kRcodes[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"};
  int code = answer.size() >= 4 ? answer[3] & 0x0f : -1;
  std::string rcode = code >= 0 && code < 6 ? kRcodes[code] : "RCODE" + std::to_string(code);
  int answers = answer.size() >= 8 ? dns::Read16(answer.data() + 6) : 0;
  spdlog::info("query client={} proto={} name={} type={} rcode={} answers={} size={} latency_us={}",
               client.ToString(), tcp ? "tcp" : "udp", name, type, rcode, answers, answer.size(),
               latency_ns / 1000);
}

}  // namespace nodedns::server
