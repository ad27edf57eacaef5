#include "lib/control/stream_server.h"

#include <unistd.h>

#include "lib/server/sockets.h"

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
  bool answered = false;
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
    return server::UvStatus(rc, "uv init");
  }
  started_ = true;
  listener_.handle.data = this;
  rc = tcp ? uv_tcp_open(&listener_.tcp, fd) : uv_pipe_open(&listener_.pipe, fd);
  if (rc != 0) {
    close(fd);
    return server::UvStatus(rc, "uv open");
  }
  listening_ = true;
  return server::UvStatus(uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 64, &StreamServer::OnConnection),
                          "listen");
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
  if (tcp) {
    uv_tcp_init(self->loop_, &c->s.tcp);
  } else {
    uv_pipe_init(self->loop_, &c->s.pipe, 0);
  }
  c->s.handle.data = c;
  uv_timer_init(self->loop_, &c->timer);
  c->timer.data = c;
  bool full = self->conns_.size() >= self->options_.max_connections;
  self->conns_.insert(c);
  if (uv_accept(server, &c->s.stream) != 0 || full) {
    self->Finish(c);
    return;
  }
  uv_timer_start(&c->timer, [](uv_timer_t* t) {
    auto* c = static_cast<Connection*>(t->data);
    c->owner->Finish(c);
  }, static_cast<uint64_t>(absl::ToInt64Milliseconds(self->options_.timeout)), 0);
  uv_read_start(
      &c->s.stream,
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        static thread_local char scratch[16384];
        *buf = uv_buf_init(scratch, sizeof(scratch));
      },
      [](uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
        auto* c = static_cast<Connection*>(stream->data);
        StreamServer* self = c->owner;
        if (nread < 0) {
          if (!c->answered) self->Finish(c);
          return;
        }
        if (c->answered) return;
        c->in.append(buf->base, static_cast<size_t>(nread));
        size_t end = c->in.find(self->options_.delimiter);
        if (end == std::string::npos) {
          if (c->in.size() > self->options_.max_request) {
            c->answered = true;
            uv_read_stop(stream);
            if (self->options_.oversize.empty()) {
              self->Finish(c);
            } else {
              self->Answer(c, self->options_.oversize);
            }
          }
          return;
        }
        c->answered = true;
        uv_read_stop(stream);
        std::string request = c->in.substr(0, end + self->options_.delimiter.size());
        std::weak_ptr<bool> alive = c->alive;
        self->handler_(request, [c, alive](std::string response) {
          if (alive.expired()) return;  // Finish() ran: the connection is gone
          c->owner->Answer(c, std::move(response));
        });
      });
}

void StreamServer::Answer(Connection* c, std::string response) {
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
