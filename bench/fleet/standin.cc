#include "bench/fleet/standin.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>

#include "bench/fleet/wire.h"

namespace nodedns::fleet {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int BindUdp(const sockaddr_in& addr, std::string* error) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  // A fleet's burst must be counted and dropped by us (the model's queue),
  // not silently by the kernel: a large receive buffer (FORCE needs root).
  int size = 8 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  }
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    *error = std::string("bind: ") + std::strerror(errno);
    close(fd);
    return -1;
  }
  return fd;
}

constexpr int64_t kNsPerSecond = 1000000000;
constexpr size_t kBatch = 64;

}  // namespace

std::unique_ptr<StandIns> StandIns::Start(const StandInOptions& options, std::string* error) {
  int c = BindUdp(options.cluster, error);
  if (c < 0) return nullptr;
  int e = BindUdp(options.external, error);
  if (e < 0) {
    close(c);
    return nullptr;
  }
  std::unique_ptr<StandIns> s(new StandIns(options, c, e));
  s->thread_ = std::thread([p = s.get()] { p->Run(); });
  return s;
}

StandIns::StandIns(const StandInOptions& options, int cluster_fd, int external_fd)
    : options_(options), cluster_fd_(cluster_fd), external_fd_(external_fd) {
  double max_factor = 1.0;
  for (const Phase& p : options_.timeline.phases()) max_factor = std::max(max_factor, p.capacity_factor);
  queue_.resize(static_cast<size_t>(options_.capacity_qps * max_factor * options_.max_queue_delay_s) + 1);
  seconds_.reserve(static_cast<size_t>(options_.timeline.total_s()) + 120);
}

StandIns::~StandIns() {
  Stop();
  close(cluster_fd_);
  close(external_fd_);
}

void StandIns::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

StandInSecond* StandIns::Second(double t) {
  if (t < 0) return nullptr;
  size_t s = static_cast<size_t>(t);
  if (s > 100000) return nullptr;
  if (s >= seconds_.size()) seconds_.resize(s + 1);
  return &seconds_[s];
}

void StandIns::Run() {
  Phase before_start;  // healthy, full capacity, first generation
  tokens_at_ns_ = NowNs();
  while (!stop_.load(std::memory_order_relaxed)) {
    int64_t now = NowNs();
    int64_t t0 = t0_ns_.load(std::memory_order_relaxed);
    double t = now >= t0 ? static_cast<double>(now - t0) / kNsPerSecond : -1;
    int index = t < 0 ? -1 : options_.timeline.PhaseAt(t);
    const Phase& phase = index < 0 ? before_start : options_.timeline.phases()[static_cast<size_t>(index)];
    if (index != last_phase_) {
      last_phase_ = index;
      // Going down takes what was queued with it: those clients get nothing.
      if (phase.mode == Mode::kDown) {
        if (StandInSecond* s = Second(t)) s->dropped += static_cast<uint32_t>(size_);
        size_ = 0;
      }
    }
    Drain(cluster_fd_, /*cluster=*/true, now, phase, t);
    Drain(external_fd_, /*cluster=*/false, now, phase, t);
    Serve(now, phase);
    pollfd fds[2] = {{cluster_fd_, POLLIN, 0}, {external_fd_, POLLIN, 0}};
    // While queries wait, wake every millisecond to answer the next ones at
    // the capacity's pace.
    poll(fds, 2, size_ > 0 ? 1 : 10);
  }
}

void StandIns::Drain(int fd, bool cluster, int64_t now_ns, const Phase& phase, double t) {
  uint8_t bufs[kBatch][kMaxPacket];
  sockaddr_in from[kBatch];
  iovec iov[kBatch];
  mmsghdr msgs[kBatch];
  double capacity = options_.capacity_qps * phase.capacity_factor;
  size_t queue_cap = std::min(queue_.size(), std::max<size_t>(1, static_cast<size_t>(capacity * options_.max_queue_delay_s)));
  // Bounded per turn, so the queue is served between batches of a flood.
  for (int round = 0; round < 64; ++round) {
    for (size_t i = 0; i < kBatch; ++i) {
      iov[i] = {bufs[i], kMaxPacket};
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(fd, msgs, kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;
    StandInSecond* sec = Second(t);
    for (int i = 0; i < n; ++i) {
      size_t len = msgs[i].msg_len;
      if (!cluster) {
        if (sec) ++sec->external;
        Answer(fd, bufs[i], len, from[i], /*cluster=*/false, phase);
        continue;
      }
      if (sec) {
        ++sec->received;
        ParsedQuery q;
        if (ParseQuery(bufs[i], len, &q) && q.qtype == kTypeSoa) ++sec->soa;
      }
      if (phase.mode == Mode::kDown || size_ >= queue_cap || len > sizeof(Queued::bytes)) {
        if (sec) ++sec->dropped;
        continue;
      }
      Queued& slot = queue_[(head_ + size_) % queue_.size()];
      ++size_;
      slot.arrived_ns = now_ns;
      slot.from = from[i];
      slot.len = static_cast<uint16_t>(len);
      std::memcpy(slot.bytes, bufs[i], len);
    }
    if (n < static_cast<int>(kBatch)) return;
  }
}

void StandIns::Serve(int64_t now_ns, const Phase& phase) {
  double capacity = options_.capacity_qps * phase.capacity_factor;
  // A token bucket with 5 ms of burst: the capacity holds at any scale of
  // time the pods can see.
  tokens_ = std::min(std::max(1.0, capacity * 0.005),
                     tokens_ + static_cast<double>(now_ns - tokens_at_ns_) / kNsPerSecond * capacity);
  tokens_at_ns_ = now_ns;
  int64_t t0 = t0_ns_.load(std::memory_order_relaxed);
  double t = now_ns >= t0 ? static_cast<double>(now_ns - t0) / kNsPerSecond : -1;
  while (size_ > 0 && tokens_ >= 1.0) {
    Queued& q = queue_[head_];
    head_ = (head_ + 1) % queue_.size();
    --size_;
    tokens_ -= 1.0;
    Answer(cluster_fd_, q.bytes, q.len, q.from, /*cluster=*/true, phase);
    if (StandInSecond* s = Second(t)) ++s->answered;
  }
}

void StandIns::Answer(int fd, const uint8_t* query, size_t len, const sockaddr_in& to, bool cluster,
                      const Phase& phase) {
  ParsedQuery q;
  if (!ParseQuery(query, len, &q)) return;
  Catalogue::Lookup l = options_.catalogue.Resolve(q.qname);
  bool cluster_name = l.kind == Catalogue::Kind::kService || l.kind == Catalogue::Kind::kClusterNxDomain ||
                      l.kind == Catalogue::Kind::kClusterApex;
  AnswerSpec spec;
  uint32_t a = 0;
  if (cluster_name && !cluster) {
    // The node's resolvers know nothing of the cluster's zone.
    spec.rcode = kRcodeNxDomain;
    spec.ttl = options_.external_ttl;
  } else if (cluster_name && phase.mode == Mode::kServFail) {
    spec.rcode = kRcodeServFail;
  } else if (cluster_name) {
    spec.zone = kClusterZone;
    spec.ttl = options_.ttl;
    if (l.kind == Catalogue::Kind::kClusterNxDomain) {
      spec.rcode = kRcodeNxDomain;
    } else if (l.kind == Catalogue::Kind::kService && q.qtype == kTypeA) {
      a = Catalogue::ServiceAddress(l.id, phase.generation);
      spec.a = &a;
    } else {
      spec.soa_answer = l.kind == Catalogue::Kind::kClusterApex && q.qtype == kTypeSoa;  // else NODATA
    }
  } else {
    // External names (from the node caches' "." zone, or forwarded by the
    // cluster DNS for pods that ask it directly).
    spec.ttl = options_.external_ttl;
    if (l.kind == Catalogue::Kind::kExternal && q.qtype == kTypeA) {
      a = Catalogue::ExternalAddress(l.id);
      spec.a = &a;
    } else if (l.kind == Catalogue::Kind::kExternalNxDomain) {
      spec.rcode = kRcodeNxDomain;
    } else {
      spec.soa_answer = l.kind == Catalogue::Kind::kRoot && q.qtype == kTypeSoa;
    }
  }
  uint8_t out[kMaxPacket];
  size_t n = WriteAnswer(query, q, spec, out, sizeof(out));
  if (n == 0) return;
  sendto(fd, out, n, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&to), sizeof(to));
}

}  // namespace nodedns::fleet
