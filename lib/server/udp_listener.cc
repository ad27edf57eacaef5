#include "lib/server/udp_listener.h"

#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lib/common/uv_status.h"
#include "lib/server/sockets.h"

namespace nodedns::server {

UdpListener::UdpListener(uv_loop_t* loop, int fd, resolver::Resolver* resolver, Counters* counters,
                         uint16_t max_udp_size)
    : loop_(loop), fd_(fd), resolver_(resolver), counters_(counters),
      slot_size_(size_t{max_udp_size} + dns::kAnswerOverhead + 64),
      in_(kBatch * kMaxQuerySize), out_(kBatch * slot_size_) {
  std::memset(in_msgs_, 0, sizeof(in_msgs_));
  std::memset(out_msgs_, 0, sizeof(out_msgs_));
  for (int i = 0; i < kBatch; ++i) {
    in_iov_[i] = {in_.data() + i * kMaxQuerySize, kMaxQuerySize};
    in_msgs_[i].msg_hdr.msg_iov = &in_iov_[i];
    in_msgs_[i].msg_hdr.msg_iovlen = 1;
    out_msgs_[i].msg_hdr.msg_iov = &out_iov_[i];
    out_msgs_[i].msg_hdr.msg_iovlen = 1;
  }
  // A wildcard socket: ask for each query's destination address.
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&bound), &len) == 0) {
    int one = 1;
    if (bound.ss_family == AF_INET &&
        reinterpret_cast<const sockaddr_in*>(&bound)->sin_addr.s_addr == htonl(INADDR_ANY)) {
      pktinfo_ = setsockopt(fd_, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) == 0;
    } else if (bound.ss_family == AF_INET6 &&
               IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_addr)) {
      pktinfo_ = setsockopt(fd_, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)) == 0;
    }
  }
}

resolver::PacketInfo UdpListener::ReceivedInfo(int i) const {
  resolver::PacketInfo info;
  const msghdr& h = in_msgs_[i].msg_hdr;
  for (const cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr;
       c = CMSG_NXTHDR(const_cast<msghdr*>(&h), const_cast<cmsghdr*>(c))) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo p;
      std::memcpy(&p, CMSG_DATA(c), sizeof(p));
      info.family = AF_INET;
      info.ifindex = p.ipi_ifindex;
      std::memcpy(&info.addr, &p.ipi_addr, sizeof(p.ipi_addr));
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      in6_pktinfo p;
      std::memcpy(&p, CMSG_DATA(c), sizeof(p));
      info.family = AF_INET6;
      info.ifindex = static_cast<int>(p.ipi6_ifindex);
      info.addr = p.ipi6_addr;
    }
  }
  return info;
}

size_t UdpListener::WriteSourceControl(const resolver::PacketInfo& info, uint8_t* buf) {
  if (info.family == 0) return 0;
  std::memset(buf, 0, kControlSize);
  msghdr h{};
  h.msg_control = buf;
  h.msg_controllen = kControlSize;
  cmsghdr* c = CMSG_FIRSTHDR(&h);
  if (info.family == AF_INET) {
    in_pktinfo p{};
    std::memcpy(&p.ipi_spec_dst, &info.addr, sizeof(p.ipi_spec_dst));  // the source to send from
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(p));
    std::memcpy(CMSG_DATA(c), &p, sizeof(p));
    return CMSG_SPACE(sizeof(p));
  }
  in6_pktinfo p{};
  p.ipi6_addr = info.addr;
  // The interface matters only for link-local addresses, which exist per
  // interface.
  if (IN6_IS_ADDR_LINKLOCAL(&info.addr)) p.ipi6_ifindex = static_cast<unsigned>(info.ifindex);
  c->cmsg_level = IPPROTO_IPV6;
  c->cmsg_type = IPV6_PKTINFO;
  c->cmsg_len = CMSG_LEN(sizeof(p));
  std::memcpy(CMSG_DATA(c), &p, sizeof(p));
  return CMSG_SPACE(sizeof(p));
}

UdpListener::~UdpListener() = default;

absl::Status UdpListener::Start() {
  if (int rc = uv_poll_init_socket(loop_, &poll_, fd_); rc != 0) return UvStatus(rc, "uv_poll_init_socket");
  poll_.data = this;
  polling_ = true;
  return UvStatus(uv_poll_start(&poll_, UV_READABLE, &UdpListener::OnReadable), "uv_poll_start");
}

void UdpListener::StopReading() {
  if (polling_ && !closed_) uv_poll_stop(&poll_);
}

void UdpListener::Close() {
  if (closed_) return;
  closed_ = true;
  if (polling_) {
    uv_poll_stop(&poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_), [](uv_handle_t* h) {
      close(static_cast<UdpListener*>(h->data)->fd_);
    });
  } else {
    close(fd_);
  }
}

void UdpListener::OnReadable(uv_poll_t* handle, int /*status*/, int /*events*/) {
  auto* self = static_cast<UdpListener*>(handle->data);
  self->ReadBatches();
}

void UdpListener::Drain() {
  for (int i = 0; i < 256 && !closed_; ++i) {
    if (ReadBatches()) return;
  }
}

bool UdpListener::ReadBatches() {
  // A few batches per wakeup, then back to the loop so TCP and upstream
  // sockets get their turn.
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < kBatch; ++i) {
      in_msgs_[i].msg_hdr.msg_name = &peers_[i];
      in_msgs_[i].msg_hdr.msg_namelen = sizeof(peers_[i]);
      in_msgs_[i].msg_hdr.msg_flags = 0;
      if (pktinfo_) {
        in_msgs_[i].msg_hdr.msg_control = in_control_[i];
        in_msgs_[i].msg_hdr.msg_controllen = kControlSize;
      }
    }
    int n = recvmmsg(fd_, in_msgs_, kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return true;  // EAGAIN (drained) or a transient error: wait for the next event
    // A full first batch: more may be waiting. How much, against the socket's
    // buffer, tells the resolver whether we keep up (load shedding). A socket
    // that never fills a batch costs no extra syscall.
    if (round == 0 && n == kBatch) ReportBacklog();
    const int64_t received = MonotonicNanos();
    int answers = 0;
    for (int i = 0; i < n; ++i) {
      if (in_msgs_[i].msg_hdr.msg_flags & MSG_TRUNC) {
        Bump(counters_->dropped_oversize);
        continue;
      }
      resolver::ReplyTarget to;
      to.sink = this;
      to.peer = SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&peers_[i]));
      to.received_ns = received;
      if (pktinfo_) to.local = ReceivedInfo(i);
      uint8_t* slot = out_.data() + answers * slot_size_;
      size_t len = 0;
      auto outcome = resolver_->HandleQuery(static_cast<const uint8_t*>(in_iov_[i].iov_base), in_msgs_[i].msg_len, to,
                                            slot, slot_size_, &len);
      if (outcome != resolver::Resolver::Outcome::kAnswered) continue;
      out_iov_[answers] = {slot, len};
      out_msgs_[answers].msg_hdr.msg_name = &peers_[i];
      out_msgs_[answers].msg_hdr.msg_namelen = in_msgs_[i].msg_hdr.msg_namelen;
      size_t control = pktinfo_ ? WriteSourceControl(to.local, out_control_[answers]) : 0;
      out_msgs_[answers].msg_hdr.msg_control = control ? out_control_[answers] : nullptr;
      out_msgs_[answers].msg_hdr.msg_controllen = control;
      ++answers;
    }
    Flush(answers);
    // One clock read per batch: every answer in it counts the batch's time.
    if (answers > 0) {
      const int64_t sent = MonotonicNanos();
      RecordLatency(counters_->latency, received, sent, static_cast<uint64_t>(answers));
      for (int i = 0; query_log_ && query_log_->enabled() && i < answers; ++i) {
        if (!query_log_->Sample()) continue;
        query_log_->Log(SocketAddress::FromSockaddr(static_cast<const sockaddr*>(out_msgs_[i].msg_hdr.msg_name)),
                        false, {static_cast<const uint8_t*>(out_iov_[i].iov_base), out_iov_[i].iov_len},
                        sent - received);
      }
    }
    if (n < kBatch) return true;
  }
  return false;
}

void UdpListener::ReportBacklog() {
  uint32_t mem[SK_MEMINFO_VARS] = {};
  socklen_t len = sizeof(mem);
  if (getsockopt(fd_, SOL_SOCKET, SO_MEMINFO, mem, &len) != 0 || len < sizeof(uint32_t) * (SK_MEMINFO_RCVBUF + 1)) {
    return;
  }
  resolver_->NoteReceiveBacklog(mem[SK_MEMINFO_RMEM_ALLOC], mem[SK_MEMINFO_RCVBUF]);
}

void UdpListener::Flush(int count) {
  int sent = 0;
  while (sent < count) {
    int n = sendmmsg(fd_, out_msgs_ + sent, static_cast<unsigned>(count - sent), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      // Skip the datagram the kernel refused (EAGAIN: send buffer full).
      Bump(counters_->udp_send_errors);
      ++sent;
      continue;
    }
    sent += n;
  }
}

void UdpListener::SendReply(const resolver::ReplyTarget& to, absl::Span<const uint8_t> answer) {
  if (closed_) return;
  alignas(cmsghdr) uint8_t control[kControlSize];
  iovec iov{const_cast<uint8_t*>(answer.data()), answer.size()};
  msghdr h{};
  h.msg_name = const_cast<sockaddr*>(to.peer.sockaddr_ptr());
  h.msg_namelen = to.peer.length();
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  if (size_t len = WriteSourceControl(to.local, control); len > 0) {
    h.msg_control = control;
    h.msg_controllen = len;
  }
  ssize_t n;
  do {
    n = sendmsg(fd_, &h, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    Bump(counters_->udp_send_errors);
    return;
  }
  int64_t now = MonotonicNanos();
  RecordLatency(counters_->latency, to.received_ns, now);
  if (query_log_ && query_log_->Sample()) query_log_->Log(to.peer, false, answer, now - to.received_ns);
}

}  // namespace nodedns::server
