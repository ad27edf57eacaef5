#include "lib/control/stream_server.h"

#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <exception>

#include "lib/common/uv_status.h"

namespace nodedns::control {

struct StreamServer::Connection {
  StreamServer* owner;
  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_stream_t stream;
    uv_handle_t handle;
  } s;
  uv_timer_t timer;
  std::string in;
  std::string out;
  uv_write_t write;
  PeerCredentials peer;
  bool reading = false;  // in owner->reading_ (at `reading_at`)
  std::list<Connection*>::iterator reading_at;
  bool answered = false;   // the request is complete (or refused): no more reading
  bool responding = false;  // an answer is being written
  bool closing = false;
  int open_handles = 2;
  // Shared with pending Respond callbacks: false once the connection is gone.
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
};

StreamServer::StreamServer(uv_loop_t* loop, const StreamServerOptions& options, Handler handler)
    : loop_(loop), options_(options), handler_(std::move(handler)) {}

StreamServer::~StreamServer() = default;

absl::Status StreamServer::Start(int fd, bool tcp) {
  int rc = tcp ? uv_tcp_init(loop_, &listener_.tcp) : uv_pipe_init(loop_, &listener_.pipe, 0);
  if (rc != 0) {
    close(fd);
    return UvStatus(rc, "uv init");
  }
  started_ = true;
  listener_.handle.data = this;
  rc = tcp ? uv_tcp_open(&listener_.tcp, fd) : uv_pipe_open(&listener_.pipe, fd);
  if (rc != 0) {
    close(fd);
    return UvStatus(rc, "uv open");
  }
  listening_ = true;
  return UvStatus(
      uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), options_.backlog, &StreamServer::OnConnection), "listen");
}

void StreamServer::StopListening() {
  if (!listening_) return;
  listening_ = false;
  uv_close(&listener_.handle, nullptr);
}

void StreamServer::OnConnection(uv_stream_t* server, int status) {
  auto* self = static_cast<StreamServer*>(server->data);
  if (status < 0 || self->closed_) return;
  auto* c = new Connection();
  c->owner = self;
  bool tcp = server->type == UV_TCP;
  int rc = tcp ? uv_tcp_init(self->loop_, &c->s.tcp) : uv_pipe_init(self->loop_, &c->s.pipe, 0);
  int timer_rc = uv_timer_init(self->loop_, &c->timer);
  if (rc != 0 || timer_rc != 0) {
    // libuv fails these only for invalid arguments: a defect, not a condition.
    spdlog::critical("stream server: handle init failed: {} / {}", uv_strerror(rc), uv_strerror(timer_rc));
    abort();
  }
  c->s.handle.data = c;
  c->timer.data = c;
  self->conns_.insert(c);
  if (uv_accept(server, &c->s.stream) != 0) {
    self->Finish(c);
    return;
  }
  ++self->stats_.accepted;
  if (self->conns_.size() > self->options_.max_connections) {
    Connection* idle = self->OldestIdle();
    if (idle == nullptr) {
      // Every other connection is being answered: this one waits its turn
      // in the next connect.
      ++self->stats_.refused;
      self->Finish(c);
      return;
    }
    ++self->stats_.idle_cut;
    self->Finish(idle);
  }
  if (!tcp) {
    uv_os_fd_t fd;
    if (uv_fileno(&c->s.handle, &fd) == 0) c->peer = ReadPeerCredentials(fd);
  }
  c->reading = true;
  c->reading_at = self->reading_.insert(self->reading_.end(), c);
  self->StartTimer(c, self->options_.request_timeout);
  uv_read_start(
      &c->s.stream,
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        static thread_local char scratch[16384];
        *buf = uv_buf_init(scratch, sizeof(scratch));
      },
      &StreamServer::OnRead);
}

StreamServer::Connection* StreamServer::OldestIdle() {
  // Connections accepted in one batch are read only after the batch: a
  // prober's request may already wait in the kernel while a flood of later
  // connections arrives. A connection with bytes pending is not idle.
  for (Connection* c : reading_) {
    uv_os_fd_t fd;
    int pending = 0;
    if (uv_fileno(&c->s.handle, &fd) == 0 && ioctl(fd, FIONREAD, &pending) == 0 && pending > 0) continue;
    return c;
  }
  return nullptr;
}

void StreamServer::StartTimer(Connection* c, absl::Duration timeout) {
  uv_timer_start(
      &c->timer,
      [](uv_timer_t* t) {
        auto* c = static_cast<Connection*>(t->data);
        ++c->owner->stats_.timed_out;
        c->owner->Finish(c);
      },
      static_cast<uint64_t>(std::max<int64_t>(1, absl::ToInt64Milliseconds(timeout))), 0);
}

void StreamServer::OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(stream->data);
  StreamServer* self = c->owner;
  if (nread < 0) {
    // EOF or an error before the request was complete: nobody to answer.
    // After it, the client may have shut down its side: answer anyway.
    if (!c->answered) self->Finish(c);
    return;
  }
  if (c->answered) return;
  c->in.append(buf->base, static_cast<size_t>(nread));
  size_t end = c->in.find(self->options_.delimiter);
  if (end == std::string::npos) {
    if (c->in.size() > self->options_.max_request) {
      ++self->stats_.oversize;
      self->Dispatch(c, "");
    }
    return;
  }
  self->Dispatch(c, c->in.substr(0, end + self->options_.delimiter.size()));
}

void StreamServer::Dispatch(Connection* c, std::string request) {
  c->answered = true;
  uv_read_stop(&c->s.stream);
  if (c->reading) {
    reading_.erase(c->reading_at);
    c->reading = false;
  }
  c->in.clear();
  StartTimer(c, options_.answer_timeout);
  if (request.empty()) {  // oversize
    if (options_.oversize.empty()) {
      Finish(c);
    } else {
      Answer(c, options_.oversize);
    }
    return;
  }
  std::weak_ptr<bool> alive = c->alive;
  Respond respond = [c, alive](std::string response) {
    if (alive.expired()) return;  // Finish() ran: the connection is gone
    c->owner->Answer(c, std::move(response));
  };
  // The last line of defence: a handler's exception must not unwind through
  // libuv and end the process (the handlers have their own boundaries).
  try {
    handler_(request, c->peer, respond);
  } catch (const std::exception& e) {
    ++stats_.internal_errors;
    spdlog::error("control: a request handler failed: {}", e.what());
    if (!options_.internal_error.empty()) respond(options_.internal_error);
  } catch (...) {
    ++stats_.internal_errors;
    spdlog::error("control: a request handler failed");
    if (!options_.internal_error.empty()) respond(options_.internal_error);
  }
}

void StreamServer::Answer(Connection* c, std::string response) {
  if (c->responding || c->closing) return;
  c->responding = true;
  c->out = std::move(response);
  uv_buf_t b = uv_buf_init(c->out.data(), static_cast<unsigned>(c->out.size()));
  c->write.data = c;
  int rc = uv_write(&c->write, &c->s.stream, &b, 1, [](uv_write_t* w, int) {
    auto* c = static_cast<Connection*>(w->data);
    c->owner->Finish(c);
  });
  if (rc != 0) Finish(c);
}

void StreamServer::Finish(Connection* c) {
  if (c->closing) return;
  c->closing = true;
  c->alive.reset();
  conns_.erase(c);
  if (c->reading) {
    reading_.erase(c->reading_at);
    c->reading = false;
  }
  auto on_close = [](uv_handle_t* h) {
    auto* c = static_cast<Connection*>(h->data);
    if (--c->open_handles == 0) delete c;
  };
  uv_timer_stop(&c->timer);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), on_close);
  uv_close(&c->s.handle, on_close);
}

void StreamServer::Close() {
  if (closed_) return;
  closed_ = true;
  std::vector<Connection*> all(conns_.begin(), conns_.end());
  for (Connection* c : all) Finish(c);
  if (listening_) {
    listening_ = false;
    uv_close(&listener_.handle, nullptr);
  } else if (started_ && !uv_is_closing(&listener_.handle)) {
    uv_close(&listener_.handle, nullptr);  // Start failed half-way
  }
}

}  // namespace nodedns::control
