#include "lib/upstream/tcp_channel.h"

#include <spdlog/spdlog.h>

#include <sys/random.h>

#include <mutex>
#include <random>

#include "absl/status/status.h"
#include "lib/common/uv_status.h"
#include "lib/dns/constants.h"
#include "lib/upstream/ares_status.h"

namespace nodedns::upstream {

struct TcpChannel::Poll {
  uv_poll_t handle;
  TcpChannel* owner;
  ares_socket_t fd;
};

namespace {

struct PendingSend {
  TcpChannel* owner;
  TcpChannel::Callback done;
  uint16_t id;
};

void InitAresOnce() {
  static std::once_flag once;
  std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
}

}  // namespace

absl::StatusOr<std::unique_ptr<TcpChannel>> TcpChannel::Create(uv_loop_t* loop, const TcpChannelOptions& options) {
  InitAresOnce();
  std::unique_ptr<TcpChannel> set(new TcpChannel(loop, options));
  ares_options opts{};
  int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB | ARES_OPT_NOROTATE |
             ARES_OPT_EDNSPSZ;
  // NOCHECKRESP: hand SERVFAIL/REFUSED back to us instead of silently trying
  // the next server, so the resolver sees and counts upstream failures.
  // STAYOPEN keeps the TCP connection to the upstream across queries.
  // EDNS: without it c-ares 1.18 takes any UDP answer over 512 octets for a
  // truncated one and asks again over TCP. (ares_send leaves our query, whose
  // last 11 octets are the OPT record, as it is; on FORMERR c-ares strips
  // exactly those and retries without EDNS.)
  opts.flags = ARES_FLAG_NOCHECKRESP | ARES_FLAG_STAYOPEN | ARES_FLAG_EDNS | ARES_FLAG_USEVC;
  opts.ednspsz = dns::kDefaultEdnsPayload;
  opts.timeout = static_cast<int>(absl::ToInt64Milliseconds(options.timeout));
  opts.tries = options.attempts;
  opts.sock_state_cb = &TcpChannel::OnSocketState;
  opts.sock_state_cb_data = set.get();
  int rc = ares_init_options(&set->channel_, &opts, mask);
  if (rc != ARES_SUCCESS) return AresStatusToStatus(rc);
  std::string csv = options.server.ToString();
  rc = ares_set_servers_ports_csv(set->channel_, csv.c_str());
  if (rc != ARES_SUCCESS) {
    absl::Status st = AresStatusToStatus(rc);
    return absl::Status(st.code(), "upstream server '" + csv + "': " + std::string(st.message()));
  }
  if (int rc2 = uv_timer_init(loop, &set->timer_); rc2 != 0) return UvStatus(rc2, "uv_timer_init");
  set->timer_.data = set.get();
  if (int rc2 = uv_timer_init(loop, &set->defer_timer_); rc2 != 0) return UvStatus(rc2, "uv_timer_init");
  set->defer_timer_.data = set.get();
  set->timer_initialized_ = true;
  return set;
}

TcpChannel::TcpChannel(uv_loop_t* loop, const TcpChannelOptions& options) : loop_(loop), options_(options) {}

TcpChannel::~TcpChannel() {
  if (channel_ != nullptr) ares_destroy(channel_);  // only if Shutdown was never called
}

void TcpChannel::Send(absl::Span<const uint8_t> query, Callback done) {
  if (shut_down_) {
    // Never from inside Send(), even now that our own handles are closed: a
    // one-shot timer of its own, which frees itself, delivers Cancelled.
    struct LateCancel {
      uv_timer_t timer;
      Callback done;
    };
    auto* late = new LateCancel{{}, std::move(done)};
    uv_timer_init(loop_, &late->timer);  // cannot fail: it only sets fields
    late->timer.data = late;
    uv_timer_start(&late->timer, [](uv_timer_t* t) {
      auto* l = static_cast<LateCancel*>(t->data);
      Callback cb = std::move(l->done);
      uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t* h) { delete static_cast<LateCancel*>(h->data); });
      cb(absl::CancelledError("TCP channel is shut down"), {});
    }, 0, 0);
    return;
  }
  if (query.size() < 12 || query.size() > 0xFFFF) {
    // Never from inside Send(): through the deferred list.
    deferred_.push_back(Deferred{absl::InvalidArgumentError("query size"), {}, std::move(done)});
    uv_timer_start(&defer_timer_, &TcpChannel::OnDeferred, 0, 0);
    return;
  }
  ++inflight_;
  // Our own random ID: c-ares 1.18's ares_send keeps the caller's, and an
  // unpredictable ID is the first defence against spoofed answers.
  uint16_t id = NewQueryId();
  ids_in_flight_.insert(id);
  std::vector<uint8_t> q(query.begin(), query.end());
  q[0] = static_cast<uint8_t>(id >> 8);
  q[1] = static_cast<uint8_t>(id);
  auto* pending = new PendingSend{this, std::move(done), id};
  in_send_ = true;
  ares_send(channel_, q.data(), static_cast<int>(q.size()), &TcpChannel::OnAnswer, pending);
  in_send_ = false;
  ArmTimer();
}

uint16_t TcpChannel::NewQueryId() {
  while (true) {
    if (random_left_ == 0) {
      ssize_t n = getrandom(random_ids_, sizeof(random_ids_), 0);
      if (n != static_cast<ssize_t>(sizeof(random_ids_))) {
        // getrandom on Linux >= 3.17 does not fail for this size once the
        // pool is initialised; if it ever does, fall back to a weaker source
        // rather than stop resolving.
        std::random_device rd;
        for (auto& v : random_ids_) v = static_cast<uint16_t>(rd());
      }
      random_left_ = sizeof(random_ids_) / sizeof(random_ids_[0]);
    }
    uint16_t id = random_ids_[--random_left_];
    if (!ids_in_flight_.contains(id)) return id;
  }
}

void TcpChannel::OnDeferred(uv_timer_t* timer) {
  auto* self = static_cast<TcpChannel*>(timer->data);
  std::vector<Deferred> batch;
  batch.swap(self->deferred_);
  for (Deferred& d : batch) d.done(d.status, d.answer);
}

void TcpChannel::OnAnswer(void* arg, int status, int timeouts, unsigned char* abuf, int alen) {
  std::unique_ptr<PendingSend> pending(static_cast<PendingSend*>(arg));
  TcpChannel* self = pending->owner;
  --self->inflight_;
  self->ids_in_flight_.erase(pending->id);
  spdlog::trace("upstream {}: answer status {} timeouts {} len {}", self->options_.name, status, timeouts, alen);
  absl::Span<const uint8_t> answer;
  if (status == ARES_SUCCESS && abuf != nullptr && alen > 0) answer = {abuf, static_cast<size_t>(alen)};
  if (self->in_send_) {
    self->deferred_.push_back(
        Deferred{AresStatusToStatus(status), std::vector<uint8_t>(answer.begin(), answer.end()), std::move(pending->done)});
    uv_timer_start(&self->defer_timer_, &TcpChannel::OnDeferred, 0, 0);
    return;
  }
  pending->done(AresStatusToStatus(status), answer);
}

void TcpChannel::OnSocketState(void* data, ares_socket_t fd, int readable, int writable) {
  auto* self = static_cast<TcpChannel*>(data);
  spdlog::trace("upstream {}: socket {} readable={} writable={}", self->options_.name, fd, readable, writable);
  auto it = self->polls_.find(fd);
  if (!readable && !writable) {
    // c-ares is about to close fd: stop watching it now.
    if (it == self->polls_.end()) return;
    Poll* p = it->second;
    self->polls_.erase(it);
    uv_poll_stop(&p->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&p->handle),
             [](uv_handle_t* h) { delete static_cast<Poll*>(h->data); });
    return;
  }
  Poll* p;
  if (it == self->polls_.end()) {
    p = new Poll{{}, self, fd};
    if (int rc = uv_poll_init_socket(self->loop_, &p->handle, fd); rc != 0) {
      spdlog::error("upstream {}: cannot watch socket: {}", self->options_.name, uv_strerror(rc));
      delete p;
      return;
    }
    p->handle.data = p;
    self->polls_.emplace(fd, p);
  } else {
    p = it->second;
  }
  int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
  uv_poll_start(&p->handle, events, &TcpChannel::OnPoll);
}

void TcpChannel::OnPoll(uv_poll_t* handle, int status, int events) {
  Poll* p = static_cast<Poll*>(handle->data);
  TcpChannel* self = p->owner;
  ares_socket_t fd = p->fd;  // p may be freed by c-ares closing the socket
  ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;
  if (status < 0) {
    // Let c-ares find the error on the socket itself.
    rfd = wfd = fd;
  } else {
    if (events & UV_READABLE) rfd = fd;
    if (events & UV_WRITABLE) wfd = fd;
  }
  ares_process_fd(self->channel_, rfd, wfd);
  self->ArmTimer();
}

void TcpChannel::OnTimer(uv_timer_t* timer) {
  auto* self = static_cast<TcpChannel*>(timer->data);
  ares_process_fd(self->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  self->ArmTimer();
}

void TcpChannel::ArmTimer() {
  if (shut_down_ || channel_ == nullptr) return;
  timeval tv{};
  if (ares_timeout(channel_, nullptr, &tv) == nullptr) {
    uv_timer_stop(&timer_);
    return;
  }
  uint64_t ms = static_cast<uint64_t>(tv.tv_sec) * 1000 + static_cast<uint64_t>(tv.tv_usec + 999) / 1000;
  // At least 1 ms: ares_timeout() truncates to whole milliseconds and says 0
  // up to a millisecond before a deadline that process_timeouts() (which
  // compares microseconds) does not yet see as passed. A 0 ms libuv timer
  // re-armed from its own callback runs again in the same loop pass, so this
  // spun the worker for up to 1 ms per upstream deadline: measured as 4-20 ms
  // stalls when an outage's first queries timed out together.
  uv_timer_start(&timer_, &TcpChannel::OnTimer, ms == 0 ? 1 : ms, 0);
}

void TcpChannel::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (channel_ != nullptr) {
    // Runs every pending callback with ARES_EDESTRUCTION and closes sockets
    // (which closes their polls through OnSocketState).
    ares_channel ch = channel_;
    channel_ = nullptr;
    ares_destroy(ch);
  }
  for (auto& [fd, p] : polls_) {
    uv_poll_stop(&p->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), [](uv_handle_t* h) { delete static_cast<Poll*>(h->data); });
  }
  polls_.clear();
  if (timer_initialized_) {
    uv_timer_stop(&timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
    uv_timer_stop(&defer_timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&defer_timer_), nullptr);
  }
  // Deliver what was deferred: every Send gets its callback exactly once.
  OnDeferred(&defer_timer_);
}

}  // namespace nodedns::upstream
