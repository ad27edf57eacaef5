#include "lib/server/tcp_listener.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "lib/common/uv_status.h"
#include "lib/server/sockets.h"
#include "lib/server/tcp_connection.h"

namespace nodedns::server {

using namespace tcp_internal;  // NOLINT: the constants of tcp_connection.h

TcpListener::TcpListener(uv_loop_t* loop, int fd, resolver::Resolver* resolver, Counters* counters,
                         const TcpOptions& options, const SteadyClock* clock, TimerQueue* timers, TcpBudget* budget)
    : loop_(loop), fd_(fd), resolver_(resolver), counters_(counters), options_(options), clock_(clock),
      timers_(timers), budget_(budget), read_buf_(kMaxFrame), out_(resolver::Resolver::kMaxAnswerSize) {}

TcpListener::~TcpListener() {
  if (sweep_ != 0) timers_->Cancel(sweep_);
}

absl::Status TcpListener::Start() {
  if (int rc = uv_tcp_init(loop_, &server_); rc != 0) return UvStatus(rc, "uv_tcp_init");
  server_.data = this;
  uv_prepare_init(loop_, &turn_);  // cannot fail; both handles are closed together
  turn_.data = this;
  started_ = true;
  if (int rc = uv_tcp_open(&server_, fd_); rc != 0) return UvStatus(rc, "uv_tcp_open");
  uv_prepare_start(&turn_, &TcpListener::OnTurn);
  uv_unref(reinterpret_cast<uv_handle_t*>(&turn_));
  return UvStatus(uv_listen(Stream(&server_), 1024, &TcpListener::OnConnection), "uv_listen");
}

void TcpListener::OnConnection(uv_stream_t* server, int status) {
  auto* self = static_cast<TcpListener*>(server->data);
  if (status < 0 || self->stopping_) return;
  if (self->accepts_this_turn_ >= kAcceptsPerTurn) {
    self->accept_deferred_ = true;  // not accepted: libuv stops watching until OnTurn accepts it
    return;
  }
  ++self->accepts_this_turn_;
  self->Accept();
}

void TcpListener::OnTurn(uv_prepare_t* prepare) {
  auto* self = static_cast<TcpListener*>(prepare->data);
  self->accepts_this_turn_ = 0;
  if (!self->accept_deferred_ || self->stopping_) return;
  self->accept_deferred_ = false;
  ++self->accepts_this_turn_;
  self->Accept();  // uv_accept starts libuv watching the listening socket again
}

void TcpListener::Accept() {
  absl::Time now = clock_->Now();
  // At the limit, the connection idle the longest makes room.
  if (conns_.size() >= static_cast<size_t>(options_.max_connections)) {
    if (Connection* victim = Cuttable(now)) Close(victim, Why::kIdleCut);
  }
  auto* c = new Connection();
  c->owner = this;
  if (uv_tcp_init(loop_, &c->tcp) != 0) {  // no handle to accept into: the kernel keeps the connection queued
    delete c;
    return;
  }
  c->tcp.data = c;
  c->write_req.data = c;
  c->id = next_id_++;
  c->last_active = now;
  conns_.emplace(c->id, c);
  Touch(c);
  if (uv_accept(Stream(&server_), Stream(&c->tcp)) != 0) {
    Close(c, Why::kOther);
    return;
  }
  if (conns_.size() > static_cast<size_t>(options_.max_connections)) {  // every one busy
    Bump(counters_->tcp_rejected);
    Close(c, Why::kOther);
    return;
  }
  Bump(counters_->tcp_accepted);
  if (!Recharge(c)) return;
  uv_tcp_nodelay(&c->tcp, 1);
  int sndbuf = kSocketSendBuffer;
  uv_send_buffer_size(reinterpret_cast<uv_handle_t*>(&c->tcp), &sndbuf);
  UpdateReading(c);
  ArmSweep();
}

size_t TcpListener::Queued(const Connection* c) const {
  return c->out.size() + (c->writing.size() - c->writing_from);
}

bool TcpListener::HasRoom(const Connection* c) const {
  return c->inflight < options_.max_pipeline && Queued(c) < options_.max_write_queue;
}

void TcpListener::UpdateReading(Connection* c) {
  bool open = !c->closing && !c->eof && !stopping_;
  bool full = Queued(c) >= options_.max_write_queue;
  if (open && full && !c->queue_full) Bump(counters_->tcp_reads_paused);
  c->queue_full = open && full;
  // Frames waiting in `in` run first: reading more would only add to them.
  bool want = open && HasRoom(c) && !FrameWaiting(c);
  if (want && !c->reading) {
    if (uv_read_start(Stream(&c->tcp), &TcpListener::OnAlloc, &TcpListener::OnRead) == 0) c->reading = true;
  } else if (!want && c->reading) {
    uv_read_stop(Stream(&c->tcp));
    c->reading = false;
  }
}

void TcpListener::OnAlloc(uv_handle_t* handle, size_t /*suggested*/, uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(handle->data);
  TcpListener* self = c->owner;
  // Into the listener's buffer: a chunk, or the rest of a longer frame.
  size_t want = kReadChunk;
  if (c->in.size() >= 2) {
    size_t frame = 2 + size_t{dns::Read16(c->in.data())};
    if (frame > c->in.size()) want = std::max(want, frame - c->in.size());
  }
  buf->base = reinterpret_cast<char*>(self->read_buf_.data());
  buf->len = std::min(want, self->read_buf_.size());
}

void TcpListener::OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* /*buf*/) {
  auto* c = static_cast<Connection*>(stream->data);
  TcpListener* self = c->owner;
  if (nread == 0) return;
  if (nread < 0) {
    if (nread == UV_EOF) {
      c->eof = true;
      self->UpdateReading(c);
      self->MaybeFinish(c);
    } else {
      self->Close(c, Why::kOther);
    }
    return;
  }
  c->read_ns = MonotonicNanos();
  const uint8_t* data = self->read_buf_.data();
  size_t n = static_cast<size_t>(nread);
  if (c->in.empty()) {
    // The common case: whole frames run straight from the read buffer, and
    // only what is left is copied.
    size_t used = self->RunFrames(c, data, n);
    if (c->closing) return;
    c->in.assign(data + used, data + n);
    self->ProcessFrames(c, used > 0);
  } else {
    c->in.insert(c->in.end(), data, data + n);
    self->ProcessFrames(c);
  }
}

size_t TcpListener::RunFrames(Connection* c, const uint8_t* data, size_t size) {
  // While stopping, queries already read but not started are not begun.
  if (stopping_) return 0;
  size_t pos = 0;
  while (!c->closing && size - pos >= 2 && HasRoom(c)) {
    size_t len = dns::Read16(data + pos);
    if (len < dns::kHeaderSize) {
      Bump(counters_->tcp_bad_frames);
      Close(c, Why::kOther);
      return pos;
    }
    if (size - pos < 2 + len) break;
    resolver::ReplyTarget to;
    to.sink = this;
    to.connection = c->id;
    to.tcp = true;
    to.received_ns = c->read_ns;
    size_t n = 0;
    auto outcome = resolver_->HandleQuery(data + pos + 2, len, to, out_.data(), out_.size(), &n);
    pos += 2 + len;
    if (outcome == resolver::Resolver::Outcome::kAnswered) {
      Queue(c, {out_.data(), n});
      Answered(c, to, {out_.data(), n});
    } else if (outcome == resolver::Resolver::Outcome::kPending) {
      ++c->inflight;
    }
  }
  if (pos > 0 && !c->closing) {
    c->last_active = clock_->Now();
    Touch(c);
  }
  return pos;
}

void TcpListener::ProcessFrames(Connection* c, bool completed) {
  // Runs what fits, hands it to the kernel, and again while the kernel takes
  // it all and frames wait (with room and a whole frame, RunFrames runs at
  // least one, unless stopping).
  for (;;) {
    size_t used = RunFrames(c, c->in.data(), c->in.size());
    if (c->closing) return;
    if (used > 0) c->in.erase(c->in.begin(), c->in.begin() + static_cast<std::ptrdiff_t>(used));
    NoteFrameState(c, completed || used > 0);
    completed = false;
    Flush(c);
    if (c->closing) return;
    if (stopping_ || !HasRoom(c) || !FrameWaiting(c)) break;
  }
  if (!Recharge(c)) return;
  UpdateReading(c);
}

bool TcpListener::FrameWaiting(const Connection* c) {
  return c->in.size() >= 2 && c->in.size() >= 2 + size_t{dns::Read16(c->in.data())};
}

void TcpListener::NoteFrameState(Connection* c, bool completed_one) {
  if (c->in.empty()) {
    FreeIfLarge(c->in);
    c->frame_started = absl::InfiniteFuture();
    return;
  }
  if (c->in.capacity() > kKeepCapacity && c->in.capacity() > 2 * c->in.size()) c->in.shrink_to_fit();
  if (FrameWaiting(c)) {
    // A whole frame waits for room: the client is not the one late.
    c->frame_started = absl::InfiniteFuture();
    return;
  }
  // A frame in progress: its deadline runs from its first byte, and more
  // bytes of it do not move it.
  if (completed_one || c->frame_started == absl::InfiniteFuture()) c->frame_started = clock_->Now();
}

void TcpListener::Queue(Connection* c, absl::Span<const uint8_t> answer) {
  size_t at = c->out.size();
  c->out.resize(at + 2 + answer.size());
  dns::Write16(c->out.data() + at, static_cast<uint16_t>(answer.size()));
  std::memcpy(c->out.data() + at + 2, answer.data(), answer.size());
}

void TcpListener::Flush(Connection* c) {
  if (c->closing || c->write_in_flight || c->out.empty()) return;
  uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(c->out.data()), static_cast<unsigned>(c->out.size()));
  int n = uv_try_write(Stream(&c->tcp), &buf, 1);
  if (n < 0 && n != UV_EAGAIN) {
    Close(c, Why::kOther);
    return;
  }
  size_t done = n > 0 ? static_cast<size_t>(n) : 0;
  if (done > 0) {
    c->last_active = clock_->Now();
    Touch(c);
  }
  if (done == c->out.size()) {
    c->out.clear();
    FreeIfLarge(c->out);
    return;
  }
  // The rest goes in one uv_write; answers meanwhile queue in `out`.
  std::swap(c->out, c->writing);
  c->writing_from = done;
  uv_buf_t rest = uv_buf_init(reinterpret_cast<char*>(c->writing.data() + done),
                              static_cast<unsigned>(c->writing.size() - done));
  if (uv_write(&c->write_req, Stream(&c->tcp), &rest, 1, &TcpListener::OnWritten) != 0) {
    Close(c, Why::kOther);
    return;
  }
  c->write_in_flight = true;
}

void TcpListener::OnWritten(uv_write_t* req, int status) {
  auto* c = static_cast<Connection*>(req->data);
  c->write_in_flight = false;
  if (c->closing) return;  // UV_ECANCELED
  TcpListener* self = c->owner;
  if (status < 0) {
    self->Close(c, Why::kOther);
    return;
  }
  c->writing.clear();
  c->writing_from = 0;
  FreeIfLarge(c->writing);
  c->last_active = self->clock_->Now();
  self->Touch(c);
  // More answers, the frames that waited for room, then maybe the end.
  self->ProcessFrames(c);
  if (c->closing) return;
  self->MaybeFinish(c);
}

void TcpListener::Answered(Connection* c, const resolver::ReplyTarget& to, absl::Span<const uint8_t> answer) {
  int64_t now = MonotonicNanos();
  RecordLatency(counters_->latency, to.received_ns, now);
  if (query_log_ && query_log_->Sample()) {
    sockaddr_storage peer{};
    int len = sizeof(peer);
    SocketAddress client;
    if (uv_tcp_getpeername(&c->tcp, reinterpret_cast<sockaddr*>(&peer), &len) == 0) {
      client = SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&peer));
    }
    query_log_->Log(client, true, answer, now - to.received_ns);
  }
}

void TcpListener::SendReply(const resolver::ReplyTarget& to, absl::Span<const uint8_t> answer) {
  auto it = conns_.find(to.connection);
  if (it == conns_.end()) {
    Bump(counters_->tcp_replies_dropped);
    return;
  }
  Connection* c = it->second;
  --c->inflight;
  Queue(c, answer);
  Answered(c, to, answer);
  // Written with the frames that waited for the pipeline to drain.
  ProcessFrames(c);
  if (c->closing) return;
  MaybeFinish(c);
}

void TcpListener::MaybeFinish(Connection* c) {
  // Once the client has finished sending (or we are stopping), nothing is in
  // flight or waiting to run, shut down after the queued answers are written.
  if (c->closing || c->shutting_down || c->inflight > 0 || !(c->eof || stopping_)) return;
  if (!c->out.empty()) return;  // Flush is waiting for the write in flight; OnWritten comes back here
  if (!stopping_ && FrameWaiting(c)) return;
  c->shutting_down = true;
  auto* req = new uv_shutdown_t();
  req->data = c;
  int rc = uv_shutdown(req, Stream(&c->tcp), [](uv_shutdown_t* req, int /*status*/) {
    auto* c = static_cast<Connection*>(req->data);
    delete req;
    c->owner->Close(c, Why::kOther);
  });
  if (rc != 0) {
    delete req;
    Close(c, Why::kOther);
  }
}

void TcpListener::Close(Connection* c, Why why) {
  if (c->closing) return;
  c->closing = true;
  switch (why) {
    case Why::kIdle: Bump(counters_->tcp_idle_closed); break;
    case Why::kSlowReader: Bump(counters_->tcp_slow_reader_closed); break;
    case Why::kFrameDeadline: Bump(counters_->tcp_frame_deadline_closed); break;
    case Why::kIdleCut: Bump(counters_->tcp_idle_cut); break;
    case Why::kBudgetCut: Bump(counters_->tcp_budget_cut); break;
    case Why::kBudget: Bump(counters_->tcp_budget_closed); break;
    case Why::kOther: break;
  }
  conns_.erase(c->id);
  Unlink(c);
  if (c->charged != 0) {
    held_ -= c->charged;
    budget_->Add(-c->charged);
    AddTo(counters_->tcp_budget_released_bytes, c->charged);
    released_since_trim_ += c->charged;
    c->charged = 0;
  }
  if (c->reading) uv_read_stop(Stream(&c->tcp));
  uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), [](uv_handle_t* h) { delete static_cast<Connection*>(h->data); });
}

void TcpListener::StopAccepting() {
  stopping_ = true;
  if (started_ && !listener_closed_) {
    listener_closed_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&server_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&turn_), nullptr);
  } else if (!started_) {
    close(fd_);
    listener_closed_ = true;
  }
  std::vector<Connection*> all;
  for (auto& [id, c] : conns_) all.push_back(c);
  for (Connection* c : all) {
    UpdateReading(c);
    MaybeFinish(c);
  }
}

void TcpListener::CloseAll() {
  StopAccepting();
  closed_all_ = true;
  if (sweep_ != 0) {
    timers_->Cancel(sweep_);
    sweep_ = 0;
  }
  std::vector<Connection*> all;
  for (auto& [id, c] : conns_) all.push_back(c);
  for (Connection* c : all) {
    // A connection in shutdown waits for answers still queued here only if
    // its client reads them; one that has stopped reading would keep the
    // loop, and so the daemon's exit, waiting forever.
    bool unread = c->write_in_flight || !c->out.empty();
    if (!c->shutting_down || unread) Close(c, Why::kOther);
  }
}

}  // namespace nodedns::server
