#ifndef NODEDNS_LIB_UPSTREAM_SERVER_CHANNEL_H_
#define NODEDNS_LIB_UPSTREAM_SERVER_CHANNEL_H_

// The Transport to one upstream server: UDP through our own UdpChannel (a
// random source port, ID and letter case for every query; RFC 5452), TCP
// through a c-ares channel (TcpChannel with ARES_FLAG_USEVC: one connection
// kept open and reused, opened again when the server closes it). By the
// zone's protocol: prefer_udp asks a truncated UDP answer again over TCP,
// udp hands it on as it is, tcp sends every query over TCP.
//
// Threading: one loop thread. Lifetime: Shutdown() (every callback runs with
// Cancelled), let the loop run its close callbacks, then destroy.

#include <uv.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lib/common/clock.h"
#include "lib/upstream/counters.h"
#include "lib/common/socket_address.h"
#include "lib/common/timer_queue.h"
#include "lib/upstream/options.h"
#include "lib/upstream/udp_channel.h"
#include "lib/upstream/upstream.h"
#include "lib/upstream/tcp_channel.h"

namespace nodedns::upstream {

struct ServerChannelOptions {
  std::string name;  // for logs: "zone ADDR:PORT"
  SocketAddress server;
  TransportOptions transport;
  Protocol protocol = Protocol::kPreferUdp;
  bool randomize_case = true;  // DNS 0x20 over UDP
};

class ServerChannel final : public Transport {
 public:
  static absl::StatusOr<std::unique_ptr<ServerChannel>> Create(uv_loop_t* loop, TimerQueue* timers,
                                                               const SteadyClock* clock, Counters* counters,
                                                               const ServerChannelOptions& options);
  ~ServerChannel() override;
  ServerChannel(const ServerChannel&) = delete;
  ServerChannel& operator=(const ServerChannel&) = delete;

  void Send(absl::Span<const uint8_t> query, Callback done) override;
  AnswerTiming last_answer() const override { return last_answer_; }
  void Shutdown();

  const UdpChannel& udp() const { return *udp_; }

 private:
  ServerChannel() = default;
  std::unique_ptr<UdpChannel> udp_;
  std::unique_ptr<TcpChannel> tcp_;
  Protocol protocol_ = Protocol::kPreferUdp;
  Counters* counters_ = nullptr;
  AnswerTiming last_answer_;
  bool shut_down_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace nodedns::upstream

#endif  // NODEDNS_LIB_UPSTREAM_SERVER_CHANNEL_H_
