#ifndef NODEDNS_LIB_UPSTREAM_TCP_CHANNEL_H_
#define NODEDNS_LIB_UPSTREAM_TCP_CHANNEL_H_

// One upstream server over TCP, through a c-ares channel (ARES_FLAG_USEVC:
// one connection, kept open and reused, queries pipelined on it) driven by a
// libuv loop: c-ares's socket-state callback starts and stops one uv_poll_t
// per socket, and one uv_timer_t is armed from ares_timeout(). UDP goes
// through our own UdpChannel instead (random port per query, RFC 5452); the
// two make a ServerChannel.
//
// Threading: a TcpChannel belongs to the thread running its loop; every
// method, and every callback it makes, runs on that thread.
// Lifetime: call Shutdown(), let the loop run until its handles are closed
// (uv_run returns), then destroy the object.

#include <ares.h>
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "lib/common/socket_address.h"
#include "lib/upstream/upstream.h"

namespace nodedns::upstream {

struct TcpChannelOptions {
  std::string name;  // for logs, e.g. the zone and server
  SocketAddress server;
  absl::Duration timeout = absl::Seconds(1);  // per attempt (c-ares doubles it per round)
  int attempts = 2;
};

class TcpChannel final : public Transport {
 public:
  // Only answers to the question asked reach the callback (c-ares checks).
  using Callback = upstream::Callback;

  static absl::StatusOr<std::unique_ptr<TcpChannel>> Create(uv_loop_t* loop, const TcpChannelOptions& options);
  ~TcpChannel() override;
  TcpChannel(const TcpChannel&) = delete;
  TcpChannel& operator=(const TcpChannel&) = delete;

  // Sends a complete DNS query under a fresh random ID (c-ares 1.18 sends the
  // caller's ID as it is and matches answers by ID and question). Retries over TCP
  // when the UDP answer is truncated. `done` never runs inside Send(): an
  // immediate failure is delivered from the loop, so callers need not be
  // re-entrant. After Shutdown() it fails with Cancelled.
  void Send(absl::Span<const uint8_t> query, Callback done) override;
  // Cancels what is in flight (callbacks get Cancelled) and closes handles.
  void Shutdown();

  size_t inflight() const { return inflight_; }
  const TcpChannelOptions& options() const { return options_; }

 private:
  struct Poll;
  explicit TcpChannel(uv_loop_t* loop, const TcpChannelOptions& options);
  static void OnSocketState(void* data, ares_socket_t fd, int readable, int writable);
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnTimer(uv_timer_t* timer);
  static void OnAnswer(void* arg, int status, int timeouts, unsigned char* abuf, int alen);
  void ArmTimer();
  static void OnDeferred(uv_timer_t* timer);
  // A random query ID not in flight on this channel (getrandom(2), buffered).
  uint16_t NewQueryId();

  struct Deferred {
    absl::Status status;
    std::vector<uint8_t> answer;
    Callback done;
  };

  uv_loop_t* const loop_;
  const TcpChannelOptions options_;
  ares_channel channel_ = nullptr;
  uv_timer_t timer_;
  bool timer_initialized_ = false;
  uv_timer_t defer_timer_;
  bool shut_down_ = false;
  bool in_send_ = false;
  std::vector<Deferred> deferred_;
  size_t inflight_ = 0;
  absl::flat_hash_map<ares_socket_t, Poll*> polls_;
  absl::flat_hash_set<uint16_t> ids_in_flight_;
  uint16_t random_ids_[256];
  size_t random_left_ = 0;
};

}  // namespace nodedns::upstream

#endif  // NODEDNS_LIB_UPSTREAM_TCP_CHANNEL_H_
