#ifndef NODEDNS_LIB_UPSTREAM_UDP_CHANNEL_H_
#define NODEDNS_LIB_UPSTREAM_UDP_CHANNEL_H_

// Queries to one upstream server over UDP, spoof-resistant (RFC 5452):
//  - every query from a socket of its own, connected to the server, so the
//    kernel gives it a random source port (c-ares 1.18 keeps one socket per
//    server for the channel's life: one port for every query). Reusing a
//    socket for a few queries would save system calls, but an attacker who
//    makes us ask his own domain learns the port of the next queries: the
//    Kaminsky attack needs exactly that. Unbound also opens one per query;
//  - a random ID (getrandom), and the name's letters in random case (DNS 0x20,
//    draft-vixie-dnsext-dns0x20) that the answer must echo exactly. A server
//    that does not echo case is recognised (three answers in a row that match
//    but for the case) and asked in lowercase from then on, with a log line;
//  - anything else arriving on the socket (another ID, another question, a
//    query, a short packet) is counted and ignored: the query keeps waiting
//    for the real answer, and a forged packet can neither end it nor poison it;
//  - attempts as c-ares makes them: resent on the same socket after
//    `timeout`, then after twice that, and so on, each with an ID of its own
//    (the name's case stays): an answer to any of them is taken, and the
//    caller learns which one it answered (AnswerTiming), so a retry that
//    saves a query still shows the loss to the concurrency limiter, and the
//    round trip is measured from the attempt it answers. (Each retry adds
//    one accepted ID: one bit less against a forger for that query, against
//    16 of the ID, about 15 of the port and one per letter.)
//  - the kernel's receive timestamp (SO_TIMESTAMPNS) goes with each answer, so
//    a busy event loop does not look like a slow upstream to the limiter.
//
// Threading: one loop thread. Lifetime: Shutdown() (callbacks get
// Cancelled), let the loop run its close callbacks, then destroy.

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "lib/common/clock.h"
#include "lib/upstream/counters.h"
#include "lib/common/socket_address.h"
#include "lib/common/timer_queue.h"
#include "lib/upstream/upstream.h"

namespace nodedns::upstream {

struct UdpChannelOptions {
  std::string name;  // for logs
  SocketAddress server;
  absl::Duration timeout = absl::Seconds(1);  // first attempt; doubled for each further one
  int attempts = 2;
  bool randomize_case = true;  // DNS 0x20
  int queries_per_port = 1;    // then a new socket, with a new random port (RFC 5452)
};

class UdpChannel {
 public:
  // With the answer (OK) or an error: DeadlineExceeded after every attempt,
  // Unavailable (the server refused: ICMP port unreachable), ResourceExhausted
  // (no socket: out of descriptors), Cancelled (Shutdown). `timing` says
  // which attempt the answer answers and when the kernel received it, on the
  // steady clock. Never called from inside Send().
  using Done =
      absl::AnyInvocable<void(const absl::Status&, absl::Span<const uint8_t> answer, const AnswerTiming& timing)>;

  UdpChannel(uv_loop_t* loop, TimerQueue* timers, const SteadyClock* clock, Counters* counters,
             const UdpChannelOptions& options);
  ~UdpChannel();
  UdpChannel(const UdpChannel&) = delete;
  UdpChannel& operator=(const UdpChannel&) = delete;

  // Sends a complete query (ID and letter case are replaced).
  void Send(absl::Span<const uint8_t> query, Done done);
  void Shutdown();

  size_t inflight() const { return queries_.size(); }
  bool randomizing_case() const { return randomize_case_; }

 private:
  struct Query;
  struct Port;
  static void OnPoll(uv_poll_t* handle, int status, int events);
  // A socket with room for another query (opened if needed), or nullptr
  // with *error set.
  Port* PortForQuery(absl::Status* error);
  void Read(Port* p);
  void MaybeClose(Port* p);
  // True if `answer` answers `q` (ID, QR, question with its exact case).
  // Counts and notes a case-only mismatch.
  // The ID was matched by the lookup.
  bool Accept(Query* q, absl::Span<const uint8_t> answer);
  void Attempt(Query* q);
  void Finish(Query* q, const absl::Status& status, absl::Span<const uint8_t> answer, const AnswerTiming& timing);
  void Fail(Done done, absl::Status status);  // asynchronously
  uint16_t RandomId();
  uint64_t RandomBits();

  uv_loop_t* const loop_;
  TimerQueue* const timers_;
  const SteadyClock* const clock_;
  Counters* const counters_;
  const UdpChannelOptions options_;
  bool randomize_case_;
  int case_mismatches_ = 0;  // in a row
  bool shut_down_ = false;
  uint64_t next_id_ = 1;
  absl::flat_hash_map<uint64_t, Query*> queries_;
  Port* current_ = nullptr;  // takes new queries until it has had queries_per_port
  uint64_t random_[64];
  size_t random_left_ = 0;
};

}  // namespace nodedns::upstream

#endif  // NODEDNS_LIB_UPSTREAM_UDP_CHANNEL_H_
