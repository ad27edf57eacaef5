#ifndef NODEDNS_TESTS_SUPPORT_FAKE_UPSTREAM_H_
#define NODEDNS_TESTS_SUPPORT_FAKE_UPSTREAM_H_

// A DNS server the tests control, on 127.0.0.1 (UDP and TCP on the same free
// port), running on its own thread. Answers:
//   names starting "nx"      -> NXDOMAIN with an SOA (MINIMUM 60)
//   names of nxdomain_from_labels() labels or more (if set) -> the same
//   names starting "nodata"  -> NOERROR, no answer, SOA
//   "big*" names             -> 40 A records (too large for 512-octet UDP)
//   other A / AAAA queries   -> one record, TTL ttl()
// and misbehaves on demand (mode, delay).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

namespace nodedns::testing {

class FakeUpstream {
 public:
  enum class Mode {
    kAnswer,          // normal answers
    kDrop,            // never answer
    kServFail,        // SERVFAIL
    kRefused,         // REFUSED
    kGarbage,         // random bytes
    kWrongQuestion,   // an answer for another name
    kWrongThenRight,  // an answer for another name, then the right one 100 ms later
    kTruncateUdp,     // TC=1 and no records over UDP; full answer over TCP
    kNxAll,           // NXDOMAIN for every name: a control plane that answers, but wrongly
  };

  static std::unique_ptr<FakeUpstream> Start();
  // On an IPv4 address and port of the caller's choosing (a network
  // namespace's address; port 0 picks one). Sockets belong to the network
  // namespace of the calling thread.
  static std::unique_ptr<FakeUpstream> StartOn(const std::string& host, uint16_t port);
  ~FakeUpstream();

  uint16_t port() const { return port_; }
  std::string address() const { return host_ + ":" + std::to_string(port_); }

  void set_mode(Mode m) { mode_ = m; }
  void set_delay_ms(int ms) { delay_ms_ = ms; }
  void set_ttl(uint32_t ttl) { ttl_ = ttl; }
  // Names with at least this many labels are NXDOMAIN (0: off): search-list
  // expansions of external names (bench/hit_ratio).
  void set_nxdomain_from_labels(int labels) { nxdomain_from_labels_ = labels; }
  // The IPv4 address given in A answers.
  void set_address(uint32_t a) { a_record_ = a; }
  // Off: queries are counted but not kept in log() and queries_for() (a
  // long benchmark would otherwise grow the upstream's memory without bound).
  void set_log_queries(bool on) { log_queries_ = on; }

  // Queries received, SOA probes not included.
  int queries() const { return queries_; }
  // SOA queries: nodedns's zone and breaker probes.
  int probes() const { return probes_; }
  // Queries for "_nodedns-loop-*" names: nodedns's forwarding-loop probes
  // (start-up, reload); neither counted as queries nor logged.
  int loop_probes() const { return loop_probes_; }
  int udp_queries() const { return udp_queries_; }
  int tcp_queries() const { return tcp_queries_; }
  // TCP connections accepted so far.
  int tcp_connections() const { return tcp_connections_; }
  // Closes every open TCP connection from the server's side, as a server
  // closing idle connections does; returns once they are closed.
  void CloseTcpConnections();
  // Queries received for `name` ("www.example.com.", any case).
  int queries_for(const std::string& name) const;
  void ResetCounts();
  // Sends each packet from the upstream's own UDP socket (its address and
  // port) to 127.0.0.1:port: what an off-path attacker forges.
  void SendFrom(uint16_t port, const std::vector<std::vector<uint8_t>>& packets) const;

  struct LoggedQuery {
    std::chrono::steady_clock::time_point at;
    std::string name;  // lowercased presentation form
    uint16_t type;
    uint16_t id;
    uint16_t source_port = 0;  // UDP: the sender's port (0 over TCP)
    std::string qname_case;    // the question's name as sent, letter case kept
  };
  // Every query received, in order.
  std::vector<LoggedQuery> log() const;

 private:
  FakeUpstream() = default;
  std::string host_ = "127.0.0.1";
  void Run();
  // Builds the answer for `mode`; `count` says whether to count the query.
  std::vector<uint8_t> Respond(const std::vector<uint8_t>& query, bool tcp, Mode mode, bool count, bool* drop,
                               uint16_t source_port = 0);
  struct Scheduled;

  int udp_fd_ = -1, tcp_fd_ = -1, wake_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::atomic<Mode> mode_{Mode::kAnswer};
  std::atomic<int> delay_ms_{0};
  std::atomic<uint32_t> ttl_{300};
  std::atomic<int> nxdomain_from_labels_{0};
  std::atomic<uint32_t> a_record_{0xC0000201};  // 192.0.2.1
  std::atomic<bool> log_queries_{true};
  std::atomic<int> queries_{0}, udp_queries_{0}, tcp_queries_{0}, probes_{0}, loop_probes_{0};
  mutable std::mutex mu_;
  std::map<std::string, int> per_name_;
  std::vector<LoggedQuery> log_;
  std::atomic<bool> stop_{false};
  std::atomic<int> tcp_connections_{0};
  std::atomic<int> close_requested_{0}, close_done_{0};
  std::thread thread_;
};

// Test names print the mode's name (gtest's PrintTo), not its bytes.
const char* ModeName(FakeUpstream::Mode m);
inline void PrintTo(FakeUpstream::Mode m, std::ostream* os) { *os << ModeName(m); }

}  // namespace nodedns::testing

#endif  // NODEDNS_TESTS_SUPPORT_FAKE_UPSTREAM_H_
