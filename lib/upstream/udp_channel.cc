#include "lib/upstream/udp_channel.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "lib/common/errno_status.h"
#include "lib/dns/constants.h"
#include "lib/dns/name.h"

namespace nodedns::upstream {

struct UdpChannel::Port {
  UdpChannel* owner = nullptr;
  int fd = -1;
  uv_poll_t poll;
  int uses = 0;  // queries it has carried; at queries_per_port it takes no more
  absl::flat_hash_map<uint16_t, Query*> by_id;  // in flight on it
  bool closing = false;
};

struct UdpChannel::Query {
  uint64_t id = 0;
  Port* port = nullptr;
  std::vector<uint8_t> wire;  // as sent: the last attempt's ID, the name in random case
  size_t question_end = 0;
  int attempt = 0;
  struct Sent {
    uint16_t id;
    absl::Time at;
  };
  absl::InlinedVector<Sent, 3> sent;  // one per attempt, each its own ID
  TimerQueue::Id timer = 0;
  Done done;
};

namespace {

// The end of the question of a query we wrote (uncompressed name), or 0.
size_t QuestionEnd(absl::Span<const uint8_t> q) {
  if (q.size() < dns::kHeaderSize + 5) return 0;
  size_t name = dns::ValidateUncompressedName(q.data() + dns::kHeaderSize, q.size() - dns::kHeaderSize);
  size_t end = dns::kHeaderSize + name + 4;
  return name == 0 || end > q.size() ? 0 : end;
}

// The steady-clock time of a kernel receive timestamp (CLOCK_REALTIME), or
// `now` when there is none or it is implausible (a wall-clock step between
// the packet and now).
absl::Time Received(const msghdr& msg, absl::Time steady_now) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(&msg), c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
    timespec ts;
    std::memcpy(&ts, CMSG_DATA(c), sizeof(ts));
    absl::Duration ago = SystemWallClock::Get()->Now() - absl::TimeFromTimespec(ts);
    if (ago < absl::ZeroDuration() || ago > absl::Seconds(1)) return steady_now;
    return steady_now - ago;
  }
  return steady_now;
}

// The timing of a failure: no attempt answered, reported at `now`.
AnswerTiming Unanswered(absl::Time now) {
  AnswerTiming timing;
  timing.received = now;
  return timing;
}

}  // namespace

UdpChannel::UdpChannel(uv_loop_t* loop, TimerQueue* timers, const SteadyClock* clock, Counters* counters,
                       const UdpChannelOptions& options)
    : loop_(loop), timers_(timers), clock_(clock), counters_(counters), options_(options),
      randomize_case_(options.randomize_case) {}

UdpChannel::~UdpChannel() { Shutdown(); }

uint64_t UdpChannel::RandomBits() {
  if (random_left_ == 0) {
    if (getrandom(random_, sizeof(random_), 0) != static_cast<ssize_t>(sizeof(random_))) {
      // getrandom does not fail for this size once the kernel's pool is
      // initialised; if it ever does, a weaker source beats no answers.
      std::random_device rd;
      for (auto& r : random_) r = (uint64_t{rd()} << 32) | rd();
    }
    random_left_ = sizeof(random_) / sizeof(random_[0]);
  }
  return random_[--random_left_];
}

uint16_t UdpChannel::RandomId() { return static_cast<uint16_t>(RandomBits()); }

void UdpChannel::Fail(Done done, absl::Status status) {
  // Never from inside Send(): through the timer queue, on the next tick.
  // (Not `this`: the channel may be gone by then; the clock is not.)
  auto shared = std::make_shared<Done>(std::move(done));
  const SteadyClock* clock = clock_;
  timers_->Add(clock->Now(), [shared, status, clock] { (*shared)(status, {}, Unanswered(clock->Now())); });
}

UdpChannel::Port* UdpChannel::PortForQuery(absl::Status* error) {
  if (current_ != nullptr && current_->uses < options_.queries_per_port) return current_;
  if (current_ != nullptr) {  // used up: it closes once its queries are done
    Port* old = current_;
    current_ = nullptr;
    MaybeClose(old);
  }
  int fd = socket(options_.server.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    // Out of descriptors (or memory): our own limit, not the upstream's.
    *error = absl::ResourceExhaustedError(ErrnoStatus(errno, "upstream socket").message());
    return nullptr;
  }
  int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on));
  // connect() binds the socket to a port the kernel picks at random (Linux
  // randomises UDP ephemeral ports) and filters what arrives to the server's
  // address and port.
  if (connect(fd, options_.server.sockaddr_ptr(), options_.server.length()) != 0) {
    *error = absl::UnavailableError(ErrnoStatus(errno, "connect to " + options_.server.ToString()).message());
    close(fd);
    return nullptr;
  }
  auto* p = new Port();
  p->owner = this;
  p->fd = fd;
  if (uv_poll_init_socket(loop_, &p->poll, fd) != 0) {
    close(fd);
    delete p;
    *error = absl::ResourceExhaustedError("cannot watch an upstream socket");
    return nullptr;
  }
  p->poll.data = p;
  uv_poll_start(&p->poll, UV_READABLE, &UdpChannel::OnPoll);
  current_ = p;
  return p;
}

void UdpChannel::MaybeClose(Port* p) {
  if (p->closing || !p->by_id.empty() || p == current_) return;
  p->closing = true;
  uv_poll_stop(&p->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&p->poll), [](uv_handle_t* h) {
    auto* port = static_cast<Port*>(h->data);
    close(port->fd);
    delete port;
  });
}

void UdpChannel::Send(absl::Span<const uint8_t> query, Done done) {
  if (shut_down_) return Fail(std::move(done), absl::CancelledError("upstream channel is shut down"));
  size_t question_end = QuestionEnd(query);
  if (question_end == 0) return Fail(std::move(done), absl::InvalidArgumentError("not a query we can send"));
  absl::Status error;
  Port* port = PortForQuery(&error);
  if (port == nullptr) return Fail(std::move(done), error);
  auto* q = new Query();
  q->id = next_id_++;
  q->port = port;
  q->done = std::move(done);
  q->wire.assign(query.begin(), query.end());
  q->question_end = question_end;
  if (randomize_case_) {
    uint64_t bits = RandomBits();
    for (size_t i = dns::kHeaderSize; i + 4 < question_end; ++i) {
      uint8_t& c = q->wire[i];
      if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') {
        c = (bits & 1) ? static_cast<uint8_t>(c & ~0x20) : static_cast<uint8_t>(c | 0x20);
        bits = bits >> 1 ? bits >> 1 : RandomBits();
      }
    }
  }
  ++port->uses;
  queries_.emplace(q->id, q);
  Attempt(q);
}

void UdpChannel::Attempt(Query* q) {
  // A new ID for every attempt (the earlier ones stay accepted): an answer
  // says which attempt it answers.
  uint16_t dns_id = RandomId();
  while (q->port->by_id.contains(dns_id)) dns_id = RandomId();
  q->wire[0] = static_cast<uint8_t>(dns_id >> 8);
  q->wire[1] = static_cast<uint8_t>(dns_id);
  q->port->by_id.emplace(dns_id, q);
  q->sent.push_back({dns_id, clock_->Now()});
  // Sending is best effort, as for c-ares: a failed send is a lost datagram,
  // and the attempt times out.
  (void)send(q->port->fd, q->wire.data(), q->wire.size(), MSG_NOSIGNAL);
  absl::Duration timeout = options_.timeout * (1 << q->attempt);
  ++q->attempt;
  uint64_t id = q->id;
  q->timer = timers_->Add(clock_->Now() + timeout, [this, id] {
    auto it = queries_.find(id);
    if (it == queries_.end()) return;
    Query* query = it->second;
    query->timer = 0;
    if (query->attempt < options_.attempts) return Attempt(query);
    Finish(query, absl::DeadlineExceededError("upstream " + options_.server.ToString() + " did not answer"), {},
           Unanswered(clock_->Now()));
  });
}

void UdpChannel::OnPoll(uv_poll_t* handle, int /*status*/, int /*events*/) {
  auto* p = static_cast<Port*>(handle->data);
  p->owner->Read(p);
}

void UdpChannel::Read(Port* p) {
  uint8_t buf[dns::kMaxMessageSize];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
  for (int i = 0; i < 64 && !p->by_id.empty(); ++i) {
    iovec iov{buf, sizeof(buf)};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = recvmsg(p->fd, &msg, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      // ECONNREFUSED: an ICMP port unreachable for our connected socket:
      // every query on it is refused.
      absl::Status st =
          absl::UnavailableError(ErrnoStatus(errno, "upstream " + options_.server.ToString()).message());
      std::vector<Query*> all;
      for (auto& [id, q] : p->by_id) {
        if (std::find(all.begin(), all.end(), q) == all.end()) all.push_back(q);
      }
      std::sort(all.begin(), all.end(), [](const Query* a, const Query* b) { return a->id < b->id; });
      for (Query* q : all) Finish(q, st, {}, Unanswered(clock_->Now()));
      return;
    }
    absl::Span<const uint8_t> answer(buf, static_cast<size_t>(n));
    auto it = answer.size() >= 2 ? p->by_id.find(dns::Read16(buf)) : p->by_id.end();
    if (it == p->by_id.end()) {
      Bump(counters_->upstream_ignored);  // another ID, or not even a header
      continue;
    }
    Query* q = it->second;
    if (!Accept(q, answer)) continue;
    AnswerTiming timing;
    timing.received = Received(msg, clock_->Now());
    for (size_t k = 0; k < q->sent.size(); ++k) {
      if (q->sent[k].id != it->first) continue;
      timing.sent = q->sent[k].at;
      timing.earlier_attempts = static_cast<int>(k);
    }
    Finish(q, absl::OkStatus(), answer, timing);
  }
  MaybeClose(p);
}

bool UdpChannel::Accept(Query* q, absl::Span<const uint8_t> a) {
  const std::vector<uint8_t>& w = q->wire;
  bool ok = a.size() >= q->question_end && (a[2] & 0x80) &&
            ((a[2] >> 3) & 0x0f) == 0 && dns::Read16(a.data() + 4) == 1;
  bool exact = ok && std::memcmp(a.data() + dns::kHeaderSize, w.data() + dns::kHeaderSize,
                                 q->question_end - dns::kHeaderSize) == 0;
  if (exact) {
    case_mismatches_ = 0;
    return true;
  }
  Bump(counters_->upstream_ignored);
  if (!ok) return false;
  // The same question in another letter case: a server that does not echo
  // case (or a forgery). Ignored; after three in a row, this server is asked
  // in lowercase from now on (the random port and ID remain).
  bool same_ignoring_case = true;
  for (size_t i = dns::kHeaderSize; i < q->question_end && same_ignoring_case; ++i) {
    same_ignoring_case = (a[i] | 0x20) == (w[i] | 0x20) || a[i] == w[i];
  }
  if (same_ignoring_case && randomize_case_ && ++case_mismatches_ >= 3) {
    randomize_case_ = false;
    spdlog::warn("upstream {}: does not echo the letter case of questions (DNS 0x20); asking in lowercase",
                 options_.name);
  }
  return false;
}

void UdpChannel::Finish(Query* q, const absl::Status& status, absl::Span<const uint8_t> answer,
                        const AnswerTiming& timing) {
  queries_.erase(q->id);
  if (q->timer) timers_->Cancel(q->timer);
  Port* p = q->port;
  for (const Query::Sent& s : q->sent) p->by_id.erase(s.id);
  Done done = std::move(q->done);
  delete q;
  MaybeClose(p);  // used up and idle: closed (its fd stays valid until the close callback)
  done(status, answer, timing);
}

void UdpChannel::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  std::vector<Query*> all;
  for (auto& [id, q] : queries_) all.push_back(q);
  std::sort(all.begin(), all.end(), [](const Query* a, const Query* b) { return a->id < b->id; });
  std::vector<Port*> ports;
  for (Query* q : all) {
    if (std::find(ports.begin(), ports.end(), q->port) == ports.end()) ports.push_back(q->port);
  }
  if (current_ != nullptr && std::find(ports.begin(), ports.end(), current_) == ports.end()) ports.push_back(current_);
  current_ = nullptr;
  for (Query* q : all) Finish(q, absl::CancelledError("upstream channel shut down"), {}, Unanswered(clock_->Now()));
  for (Port* p : ports) MaybeClose(p);
}

}  // namespace nodedns::upstream
