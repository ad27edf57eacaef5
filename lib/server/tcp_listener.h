#ifndef NODEDNS_LIB_SERVER_TCP_LISTENER_H_
#define NODEDNS_LIB_SERVER_TCP_LISTENER_H_

// DNS over TCP (RFC 7766): 2-octet length framing, several pipelined queries
// per connection answered in any order, an idle timeout, a cap on
// connections and on queries in flight per connection (reading pauses at the
// cap), and a bound on unread answers (a client that does not read is cut).
//
// Threading: belongs to one worker loop; not thread-safe.
// Lifetime: CloseAll(), let the loop run the close callbacks, then destroy.

#include <uv.h>

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "lib/server/counters.h"
#include "lib/resolver/resolver.h"
#include "lib/server/query_log.h"

namespace nodedns::server {

struct TcpOptions {
  int max_connections = 1024;
  absl::Duration idle_timeout = absl::Seconds(10);
  int max_pipeline = 64;
  size_t max_write_queue = 1 << 20;
};

class TcpListener final : public resolver::ReplySink {
 public:
  // Takes ownership of the listening `fd`.
  TcpListener(uv_loop_t* loop, int fd, resolver::Resolver* resolver, Counters* counters, const TcpOptions& options);
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

  void SendReply(const resolver::ReplyTarget& to, absl::Span<const uint8_t> answer) override;
  // New queries go to `resolver` (configuration reload); answers of queries
  // the previous one still has in flight keep arriving through SendReply.
  void set_resolver(resolver::Resolver* resolver) { resolver_ = resolver; }
  void set_query_log(QueryLog* log) { query_log_ = log; }

 private:
  struct Connection;
  static void OnConnection(uv_stream_t* server, int status);
  static void OnAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void OnIdle(uv_timer_t* timer);
  void ProcessFrames(Connection* c);
  void Write(Connection* c, absl::Span<const uint8_t> answer);
  // Latency histogram and query log for an answer written to `c`.
  void Answered(Connection* c, const resolver::ReplyTarget& to, absl::Span<const uint8_t> answer);
  void MaybeFinish(Connection* c);
  void Close(Connection* c);
  void UpdateReading(Connection* c);

  uv_loop_t* const loop_;
  const int fd_;
  resolver::Resolver* resolver_;
  Counters* const counters_;
  QueryLog* query_log_ = nullptr;
  const TcpOptions options_;
  uv_tcp_t server_;
  bool started_ = false;
  bool stopping_ = false;
  bool listener_closed_ = false;
  uint64_t next_id_ = 1;
  absl::flat_hash_map<uint64_t, Connection*> conns_;
  std::vector<uint8_t> out_;  // scratch for synchronous answers
};

}  // namespace nodedns::server

#endif  // NODEDNS_LIB_SERVER_TCP_LISTENER_H_
