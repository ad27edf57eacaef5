#include "lib/upstream/server_channel.h"

#include <vector>

#include "lib/dns/constants.h"

namespace nodedns::upstream {

absl::StatusOr<std::unique_ptr<ServerChannel>> ServerChannel::Create(uv_loop_t* loop, TimerQueue* timers,
                                                                     const SteadyClock* clock, Counters* counters,
                                                                     const ServerChannelOptions& options) {
  std::unique_ptr<ServerChannel> c(new ServerChannel());
  c->counters_ = counters;
  c->protocol_ = options.protocol;
  UdpChannelOptions u;
  u.name = options.name;
  u.server = options.server;
  u.timeout = options.transport.timeout;
  u.attempts = options.transport.attempts;
  u.randomize_case = options.randomize_case;
  c->udp_ = std::make_unique<UdpChannel>(loop, timers, clock, counters, u);
  TcpChannelOptions t;
  t.name = options.name + " (tcp)";
  t.server = options.server;
  t.timeout = options.transport.timeout;
  t.attempts = options.transport.attempts;
  auto tcp = TcpChannel::Create(loop, t);
  if (!tcp.ok()) return tcp.status();
  c->tcp_ = std::move(*tcp);
  return c;
}

ServerChannel::~ServerChannel() {
  *alive_ = false;
  Shutdown();
}

void ServerChannel::Send(absl::Span<const uint8_t> query, Callback done) {
  if (protocol_ == Protocol::kTcp) return tcp_->Send(query, std::move(done));
  std::weak_ptr<bool> alive = alive_;
  // Kept for a TCP retry of a truncated answer.
  auto wire = std::make_shared<std::vector<uint8_t>>(query.begin(), query.end());
  udp_->Send(query, [this, alive, wire, done = std::move(done)](const absl::Status& st,
                                                                absl::Span<const uint8_t> answer,
                                                                const AnswerTiming& timing) mutable {
    if (alive.expired()) return done(absl::CancelledError("upstream channel closed"), {});
    if (st.ok() && answer.size() >= dns::kHeaderSize && (answer[2] & (dns::kFlagTC >> 8)) && !shut_down_ &&
        protocol_ == Protocol::kPreferUdp) {
      // Truncated: the whole answer over TCP (c-ares keeps the connection).
      return tcp_->Send(*wire, std::move(done));
    }
    last_answer_ = timing;
    done(st, answer);
    if (!alive.expired()) last_answer_ = AnswerTiming{};
  });
}

void ServerChannel::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  udp_->Shutdown();
  tcp_->Shutdown();
}

}  // namespace nodedns::upstream
