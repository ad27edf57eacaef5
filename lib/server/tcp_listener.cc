#include "lib/server/tcp_listener.h"

#include <unistd.h>

#include <cstring>
#include <memory>

#include "lib/common/uv_status.h"
#include "lib/server/sockets.h"

namespace nodedns::server {

struct TcpListener::Connection {
  TcpListener* owner = nullptr;
  uint64_t id = 0;
  uv_tcp_t tcp;
  uv_timer_t idle;
  int open_handles = 0;
  std::vector<uint8_t> in;  // received, not yet processed; grows to one frame
  size_t in_used = 0;
  int inflight = 0;         // queries waiting for an upstream answer
  int64_t read_ns = 0;      // MonotonicNanos() of the last read (latency histogram)
  bool reading = false;
  bool eof = false;         // the client finished sending
  bool closing = false;
  bool shutting_down = false;
};

namespace {

struct WriteRequest {
  uv_write_t req;
  std::vector<uint8_t> data;
};

constexpr size_t kInitialBuffer = 4096;

}  // namespace

TcpListener::TcpListener(uv_loop_t* loop, int fd, resolver::Resolver* resolver, Counters* counters,
                         const TcpOptions& options)
    : loop_(loop), fd_(fd), resolver_(resolver), counters_(counters), options_(options),
      out_(resolver::Resolver::kMaxAnswerSize) {}

TcpListener::~TcpListener() = default;

absl::Status TcpListener::Start() {
  if (int rc = uv_tcp_init(loop_, &server_); rc != 0) return UvStatus(rc, "uv_tcp_init");
  server_.data = this;
  started_ = true;
  if (int rc = uv_tcp_open(&server_, fd_); rc != 0) return UvStatus(rc, "uv_tcp_open");
  return UvStatus(uv_listen(reinterpret_cast<uv_stream_t*>(&server_), 1024, &TcpListener::OnConnection), "uv_listen");
}

void TcpListener::OnConnection(uv_stream_t* server, int status) {
  auto* self = static_cast<TcpListener*>(server->data);
  if (status < 0 || self->stopping_) return;
  auto* c = new Connection();
  c->owner = self;
  if (uv_tcp_init(self->loop_, &c->tcp) != 0) {  // no handle to accept into: the kernel keeps the connection queued
    delete c;
    return;
  }
  uv_timer_init(self->loop_, &c->idle);  // cannot fail: it only sets fields
  c->tcp.data = c;
  c->idle.data = c;
  c->open_handles = 2;
  c->id = self->next_id_++;
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
    self->conns_.emplace(c->id, c);
    self->Close(c);
    return;
  }
  self->conns_.emplace(c->id, c);
  if (self->conns_.size() > static_cast<size_t>(self->options_.max_connections)) {
    Bump(self->counters_->tcp_rejected);
    self->Close(c);
    return;
  }
  Bump(self->counters_->tcp_accepted);
  uv_tcp_nodelay(&c->tcp, 1);
  self->UpdateReading(c);
  uv_timer_start(&c->idle, &TcpListener::OnIdle, absl::ToInt64Milliseconds(self->options_.idle_timeout), 0);
}

void TcpListener::UpdateReading(Connection* c) {
  bool want = !c->closing && !c->eof && !stopping_ && c->inflight < options_.max_pipeline;
  if (want && !c->reading) {
    if (uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), &TcpListener::OnAlloc, &TcpListener::OnRead) == 0) {
      c->reading = true;
    }
  } else if (!want && c->reading) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));
    c->reading = false;
  }
}

void TcpListener::OnAlloc(uv_handle_t* handle, size_t /*suggested*/, uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(handle->data);
  // Room for the rest of the current frame, at least kInitialBuffer.
  size_t want = kInitialBuffer;
  if (c->in_used >= 2) want = std::max(want, size_t{dns::Read16(c->in.data())} + 2);
  if (c->in.size() < want) c->in.resize(want);
  if (c->in.size() - c->in_used < 512 && c->in.size() < 65537 + kInitialBuffer) c->in.resize(c->in.size() * 2);
  buf->base = reinterpret_cast<char*>(c->in.data() + c->in_used);
  buf->len = c->in.size() - c->in_used;
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
      self->Close(c);
    }
    return;
  }
  c->in_used += static_cast<size_t>(nread);
  c->read_ns = MonotonicNanos();
  uv_timer_start(&c->idle, &TcpListener::OnIdle, absl::ToInt64Milliseconds(self->options_.idle_timeout), 0);
  self->ProcessFrames(c);
}

void TcpListener::ProcessFrames(Connection* c) {
  // While stopping, queries already read but not started are not begun.
  if (stopping_) return;
  size_t pos = 0;
  while (!c->closing && c->in_used - pos >= 2 && c->inflight < options_.max_pipeline) {
    size_t len = dns::Read16(c->in.data() + pos);
    if (len < dns::kHeaderSize) {
      Bump(counters_->tcp_bad_frames);
      Close(c);
      return;
    }
    if (c->in_used - pos < 2 + len) break;
    resolver::ReplyTarget to;
    to.sink = this;
    to.connection = c->id;
    to.tcp = true;
    to.received_ns = c->read_ns;
    size_t n = 0;
    auto outcome = resolver_->HandleQuery(c->in.data() + pos + 2, len, to, out_.data(), out_.size(), &n);
    pos += 2 + len;
    if (outcome == resolver::Resolver::Outcome::kAnswered) {
      Write(c, {out_.data(), n});
      Answered(c, to, {out_.data(), n});
    } else if (outcome == resolver::Resolver::Outcome::kPending) {
      ++c->inflight;
    }
  }
  if (c->closing) return;
  if (pos > 0) {
    std::memmove(c->in.data(), c->in.data() + pos, c->in_used - pos);
    c->in_used -= pos;
  }
  UpdateReading(c);
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

void TcpListener::Write(Connection* c, absl::Span<const uint8_t> answer) {
  if (uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(&c->tcp)) > options_.max_write_queue) {
    Bump(counters_->tcp_slow_reader_closed);
    Close(c);
    return;
  }
  auto* w = new WriteRequest();
  w->data.resize(answer.size() + 2);
  dns::Write16(w->data.data(), static_cast<uint16_t>(answer.size()));
  std::memcpy(w->data.data() + 2, answer.data(), answer.size());
  w->req.data = c;
  uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(w->data.data()), static_cast<unsigned>(w->data.size()));
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1, [](uv_write_t* req, int status) {
    std::unique_ptr<WriteRequest> w(reinterpret_cast<WriteRequest*>(req));
    auto* c = static_cast<Connection*>(req->data);
    if (status < 0 && status != UV_ECANCELED) c->owner->Close(c);
  });
  if (rc != 0) {
    delete w;
    Close(c);
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
  Write(c, answer);
  Answered(c, to, answer);
  if (c->closing) return;
  // Frames that waited for the pipeline to drain.
  ProcessFrames(c);
  MaybeFinish(c);
}

void TcpListener::MaybeFinish(Connection* c) {
  // Once the client has finished sending (or we are stopping) and nothing is
  // in flight, shut down after the queued answers are written.
  if (c->closing || c->shutting_down || c->inflight > 0 || !(c->eof || stopping_)) return;
  c->shutting_down = true;
  auto* req = new uv_shutdown_t();
  req->data = c;
  int rc = uv_shutdown(req, reinterpret_cast<uv_stream_t*>(&c->tcp), [](uv_shutdown_t* req, int /*status*/) {
    auto* c = static_cast<Connection*>(req->data);
    delete req;
    c->owner->Close(c);
  });
  if (rc != 0) {
    delete req;
    Close(c);
  }
}

void TcpListener::OnIdle(uv_timer_t* timer) {
  auto* c = static_cast<Connection*>(timer->data);
  if (c->inflight > 0) {
    uv_timer_start(&c->idle, &TcpListener::OnIdle, absl::ToInt64Milliseconds(c->owner->options_.idle_timeout), 0);
    return;
  }
  Bump(c->owner->counters_->tcp_idle_closed);
  c->owner->Close(c);
}

void TcpListener::Close(Connection* c) {
  if (c->closing) return;
  c->closing = true;
  conns_.erase(c->id);
  if (c->reading) uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));
  uv_timer_stop(&c->idle);
  auto on_closed = [](uv_handle_t* h) {
    auto* c = static_cast<Connection*>(h->data);
    if (--c->open_handles == 0) delete c;
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->idle), on_closed);
}

void TcpListener::StopAccepting() {
  stopping_ = true;
  if (started_ && !listener_closed_) {
    listener_closed_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&server_), nullptr);
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
  std::vector<Connection*> all;
  for (auto& [id, c] : conns_) all.push_back(c);
  for (Connection* c : all) {
    // A connection in shutdown waits for answers still queued here only if
    // its client reads them; one that has stopped reading would keep the
    // loop, and so the daemon's exit, waiting forever.
    bool unread = uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(&c->tcp)) > 0;
    if (!c->shutting_down || unread) Close(c);
  }
}

}  // namespace nodedns::server
