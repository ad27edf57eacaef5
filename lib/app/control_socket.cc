#include "lib/app/control_socket.h"

#include "lib/control/commands.h"

namespace nodedns::app {

control::UnixSocketOptions ControlSocketOptionsFor(const config::Config& c) {
  control::UnixSocketOptions o;
  o.path = c.control_socket;
  o.mode = c.control_socket_mode;
  o.owner = c.control_socket_owner;
  o.group = c.control_socket_group;
  return o;
}

ControlSocket::ControlSocket(uv_loop_t* loop, control::UnixSocketOptions options, control::ControlTarget* target)
    : loop_(loop), options_(std::move(options)), target_(target) {}

absl::Status ControlSocket::Listen(bool replace_live) {
  if (!enabled()) return absl::OkStatus();
  control::UnixSocketOptions o = options_;
  o.replace_live = replace_live;
  auto l = control::ListenUnix(o);
  if (!l.ok()) {
    return absl::Status(l.status().code(), "control socket: " + std::string(l.status().message()) +
                                               " (set --control-socket PATH, or \"\" to turn it off)");
  }
  listener_ = *l;
  if (server_) retired_.push_back(std::move(server_));
  server_ = std::make_unique<control::StreamServer>(
      loop_, control::ControlSocketOptions(),
      [this](std::string_view req, const control::PeerCredentials& peer, control::StreamServer::Respond r) {
        control::HandleControlRequest(req, peer, *target_, r);
      });
  owned_ = true;
  return server_->Start(l->fd, /*tcp=*/false);
}

bool ControlSocket::OwnsPath() const {
  return server_ && server_->listening() && control::IsOurUnixSocket(options_.path, listener_);
}

void ControlSocket::GiveUpPath() {
  if (!server_ || !server_->listening()) return;
  server_->StopListening();
  owned_ = false;
}

void ControlSocket::Close() {
  if (server_) server_->Close();
  for (auto& r : retired_) r->Close();
}

void ControlSocket::RemoveIfOwned() {
  if (server_ && owned_) control::RemoveUnixSocket(options_.path, listener_);
}

control::ConnectionStats ControlSocket::stats() const {
  control::ConnectionStats s;
  if (server_) s += server_->stats();
  for (const auto& r : retired_) s += r->stats();
  return s;
}

}  // namespace nodedns::app
