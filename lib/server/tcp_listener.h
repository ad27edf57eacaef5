#ifndef NODEDNS_LIB_SERVER_TCP_LISTENER_H_
#define NODEDNS_LIB_SERVER_TCP_LISTENER_H_

// DNS over TCP (RFC 7766): 2-octet length framing, several pipelined queries
// per connection answered in any order, and every byte a connection holds
// bounded:
//  - reads land in one buffer per listener; a connection keeps only the bytes
//    of a frame not yet complete (or of frames waiting for room), so an idle
//    or trickling connection holds a few hundred bytes;
//  - answers are appended to the connection's queue and written together
//    (one write per batch, no allocation per answer); reading pauses while
//    the queue holds max_write_queue bytes or max_pipeline queries are in
//    flight, cache hits included;
//  - what each connection holds (its buffers' capacity and a fixed cost) is
//    charged to a TcpBudget shared by the process; past it, connections whose
//    clients stopped reading are cut, then the one that grows is closed;
//  - each frame must arrive whole within frame_timeout of its first byte;
//    a connection with no complete query and no answer taken for
//    idle_timeout (and nothing in flight) is closed;
//  - at most kAcceptsPerTurn connections are accepted per loop iteration, so
//    a burst of connects cannot delay UDP queries for long;
//  - at max_connections a new connection cuts the one idle the longest
//    (partial frames do not count as activity), so TC=1 fallback always has
//    room; it is refused only if every connection is busy.
// Deadlines are checked by a sweep on the injectable clock and TimerQueue.
//
// Threading: belongs to one worker loop (and its clock and TimerQueue); not
// thread-safe, except the TcpBudget it shares.
// Lifetime: CloseAll(), let the loop run the close callbacks, then destroy
// (before the TimerQueue).

#include <uv.h>

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "lib/common/clock.h"
#include "lib/common/timer_queue.h"
#include "lib/server/counters.h"
#include "lib/resolver/resolver.h"
#include "lib/server/query_log.h"
#include "lib/server/tcp_options.h"

namespace nodedns::server {

class TcpListener final : public resolver::ReplySink {
 public:
  // Takes ownership of the listening `fd`. `clock`, `timers` and `budget`
  // must outlive the listener.
  TcpListener(uv_loop_t* loop, int fd, resolver::Resolver* resolver, Counters* counters, const TcpOptions& options,
              const SteadyClock* clock, TimerQueue* timers, TcpBudget* budget);
  ~TcpListener() override;
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  absl::Status Start();
  // Graceful stop, step one: no new connections, no new queries; answers in
  // flight are still written, and idle connections close.
  void StopAccepting();
  // Step two: closes every connection once its queued answers are written;
  // a connection whose client is not reading them is closed at once.
  void CloseAll();
  size_t connections() const { return conns_.size(); }
  // Bytes this listener's connections hold (charged to the budget).
  int64_t held_bytes() const { return held_; }
  // Checks every connection's deadlines at `now` (the sweep does this on its
  // own; tests call it after advancing a fake clock).
  void Sweep(absl::Time now);

  void SendReply(const resolver::ReplyTarget& to, absl::Span<const uint8_t> answer) override;
  // New queries go to `resolver` (configuration reload); answers of queries
  // the previous one still has in flight keep arriving through SendReply.
  void set_resolver(resolver::Resolver* resolver) { resolver_ = resolver; }
  void set_query_log(QueryLog* log) { query_log_ = log; }

  // A connection's fixed cost, charged besides its buffers: the Connection
  // (with libuv's handle and write request) and its map entry, rounded up.
  static constexpr int64_t kConnectionCost = 1024;

 private:
  struct Connection;
  enum class Why { kIdle, kSlowReader, kFrameDeadline, kIdleCut, kBudgetCut, kBudget, kOther };
  static void OnConnection(uv_stream_t* server, int status);
  // Once per loop iteration, before polling: the allowance starts over, and a deferred
  // connection is accepted.
  static void OnTurn(uv_prepare_t* prepare);
  static void OnAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void OnWritten(uv_write_t* req, int status);
  void Accept();
  // Runs the complete frames in `c->in` while there is room, keeps the rest,
  // writes, and pauses or resumes reading. `completed`: a frame was run just
  // before (so a partial one in `c->in` is new).
  void ProcessFrames(Connection* c, bool completed = false);
  // Runs complete frames of `data` while there is room; returns the bytes used.
  size_t RunFrames(Connection* c, const uint8_t* data, size_t size);
  // Notes where the frame in progress stands after `c->in` changed.
  void NoteFrameState(Connection* c, bool completed_one);
  void Queue(Connection* c, absl::Span<const uint8_t> answer);
  // Hands the queued answers to the kernel (or to one uv_write).
  void Flush(Connection* c);
  // Latency histogram and query log for an answer written to `c`.
  void Answered(Connection* c, const resolver::ReplyTarget& to, absl::Span<const uint8_t> answer);
  void MaybeFinish(Connection* c);
  void Close(Connection* c, Why why);
  void UpdateReading(Connection* c);
  bool HasRoom(const Connection* c) const;
  // A whole frame waits in `c->in` (for room to run it).
  static bool FrameWaiting(const Connection* c);
  size_t Queued(const Connection* c) const;
  // Brings `c`'s charge up to date; over the budget, cuts stalled
  // connections, then closes `c`. False if `c` was closed.
  bool Recharge(Connection* c);
  void Touch(Connection* c);
  void Unlink(Connection* c);
  // The connection idle the longest that may be cut for a new one, or null.
  Connection* Cuttable(absl::Time now) const;
  void ArmSweep();
  void MaybeTrim();

  uv_loop_t* const loop_;
  const int fd_;
  resolver::Resolver* resolver_;
  Counters* const counters_;
  QueryLog* query_log_ = nullptr;
  const TcpOptions options_;
  const SteadyClock* const clock_;
  TimerQueue* const timers_;
  TcpBudget* const budget_;
  uv_tcp_t server_;
  uv_prepare_t turn_;
  int accepts_this_turn_ = 0;
  bool accept_deferred_ = false;
  bool started_ = false;
  bool stopping_ = false;
  bool closed_all_ = false;
  bool listener_closed_ = false;
  uint64_t next_id_ = 1;
  absl::flat_hash_map<uint64_t, Connection*> conns_;
  // Connections by last activity, the oldest first (intrusive list).
  Connection* oldest_ = nullptr;
  Connection* newest_ = nullptr;
  int64_t held_ = 0;
  int64_t released_since_trim_ = 0;
  TimerQueue::Id sweep_ = 0;
  std::vector<uint8_t> read_buf_;  // every connection reads here first
  std::vector<uint8_t> out_;       // scratch for synchronous answers
};

}  // namespace nodedns::server

#endif  // NODEDNS_LIB_SERVER_TCP_LISTENER_H_
