#include "tests/support/fake_upstream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>

#include "lib/common/socket_address.h"
#include "lib/dns/message.h"
#include "lib/dns/name.h"

namespace nodedns::testing {

using Clock = std::chrono::steady_clock;

struct FakeUpstream::Scheduled {
  Clock::time_point due;
  bool tcp;
  int fd;
  sockaddr_storage peer;
  socklen_t peer_len;
  std::vector<uint8_t> data;
};

namespace {

int BindLoopback(int type, uint16_t port, const std::string& host = "127.0.0.1") {
  int fd = socket(AF_INET, type, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, host.c_str(), &a.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  if (type == SOCK_STREAM) listen(fd, 64);
  return fd;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

dns::Record Soa(const std::string& zone_wire) {
  dns::Record soa;
  soa.name = zone_wire;
  soa.type = dns::kTypeSOA;
  soa.ttl = 300;
  soa.rdata = *dns::NameFromText("ns.example.") + *dns::NameFromText("hostmaster.example.");
  uint8_t tail[20];
  uint32_t vals[5] = {1, 3600, 600, 86400, 60};
  for (int i = 0; i < 5; ++i) dns::Write32(tail + 4 * i, vals[i]);
  soa.rdata.append(reinterpret_cast<char*>(tail), 20);
  return soa;
}

}  // namespace

std::unique_ptr<FakeUpstream> FakeUpstream::Start() { return StartOn("127.0.0.1", 0); }

std::unique_ptr<FakeUpstream> FakeUpstream::StartOn(const std::string& host, uint16_t port) {
  std::unique_ptr<FakeUpstream> f(new FakeUpstream());
  f->host_ = host;
  for (int attempt = 0; attempt < 50; ++attempt) {
    int u = BindLoopback(SOCK_DGRAM, port, host);
    if (u < 0) continue;
    sockaddr_in a{};
    socklen_t len = sizeof(a);
    getsockname(u, reinterpret_cast<sockaddr*>(&a), &len);
    int t = BindLoopback(SOCK_STREAM, ntohs(a.sin_port), host);
    if (t < 0) {
      close(u);
      continue;
    }
    f->udp_fd_ = u;
    f->tcp_fd_ = t;
    f->port_ = ntohs(a.sin_port);
    break;
  }
  if (f->udp_fd_ < 0) return nullptr;
  if (pipe(f->wake_) != 0) return nullptr;
  f->thread_ = std::thread([p = f.get()] { p->Run(); });
  return f;
}

FakeUpstream::~FakeUpstream() {
  stop_ = true;
  if (wake_[1] >= 0) (void)!write(wake_[1], "x", 1);
  if (thread_.joinable()) thread_.join();
  for (int fd : {udp_fd_, tcp_fd_, wake_[0], wake_[1]}) {
    if (fd >= 0) close(fd);
  }
}

int FakeUpstream::queries_for(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = per_name_.find(Lower(name));
  return it == per_name_.end() ? 0 : it->second;
}

std::vector<FakeUpstream::LoggedQuery> FakeUpstream::log() const {
  std::lock_guard<std::mutex> lock(mu_);
  return log_;
}

void FakeUpstream::SendFrom(uint16_t port, const std::vector<std::vector<uint8_t>>& packets) const {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(port);
  for (const auto& p : packets) sendto(udp_fd_, p.data(), p.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
}

void FakeUpstream::ResetCounts() {
  std::lock_guard<std::mutex> lock(mu_);
  per_name_.clear();
  log_.clear();
  queries_ = udp_queries_ = tcp_queries_ = probes_ = 0;
}

std::vector<uint8_t> FakeUpstream::Respond(const std::vector<uint8_t>& query, bool tcp, Mode mode, bool count,
                                           bool* drop, uint16_t source_port) {
  *drop = false;
  auto q = dns::ParseMessage(query);
  if (!q.ok() || q->questions.size() != 1) {
    *drop = true;
    return {};
  }
  std::string qname_text = dns::NameToText(q->questions[0].name);
  bool loop_probe = Lower(qname_text).rfind("_nodedns-loop-", 0) == 0;
  if (count && q->questions[0].type == dns::kTypeSOA) {
    ++probes_;  // nodedns's zone and breaker probes: not client traffic
  } else if (count && loop_probe) {
    ++loop_probes_;  // nodedns's forwarding-loop probe at start-up and reload
    count = false;
  } else if (count) {
    ++queries_;
    ++(tcp ? tcp_queries_ : udp_queries_);
  }
  if (count && log_queries_) {
    std::lock_guard<std::mutex> lock(mu_);
    per_name_[Lower(qname_text)]++;
    log_.push_back({Clock::now(), Lower(qname_text), q->questions[0].type, q->id, source_port, qname_text});
  }
  if (mode == Mode::kDrop) {
    *drop = true;
    return {};
  }
  if (mode == Mode::kGarbage) {
    std::mt19937 rng(static_cast<unsigned>(queries_));
    std::vector<uint8_t> g(40 + rng() % 200);
    for (auto& b : g) b = static_cast<uint8_t>(rng());
    dns::Write16(g.data(), q->id);  // right ID, garbage after it
    return g;
  }
  dns::Message r;
  r.id = q->id;
  r.flags = static_cast<uint16_t>(dns::kFlagQR | dns::kFlagRA | (q->flags & dns::kFlagRD));
  r.questions = q->questions;
  if (q->edns) r.edns = dns::Edns{};
  const dns::Question& question = q->questions[0];
  std::string first = Lower(qname_text.substr(0, qname_text.find('.')));
  auto zone = dns::NameFromText("example.");
  if (mode == Mode::kServFail) {
    r.set_rcode(dns::kServFail);
  } else if (mode == Mode::kRefused) {
    r.set_rcode(dns::kRefused);
  } else if (mode == Mode::kWrongQuestion) {
    r.questions[0].name = *dns::NameFromText("wrong.example.");
  } else if (mode == Mode::kTruncateUdp && !tcp) {
    r.flags |= dns::kFlagTC;
  } else if (first.rfind("nx", 0) == 0 || mode == Mode::kNxAll ||
             (nxdomain_from_labels_ > 0 &&
              std::count(qname_text.begin(), qname_text.end(), '.') >= nxdomain_from_labels_)) {
    r.set_rcode(dns::kNxDomain);
    r.authority.push_back(Soa(*zone));
  } else if (first.rfind("nodata", 0) == 0 ||
             (question.type != dns::kTypeA && question.type != dns::kTypeAAAA)) {
    r.authority.push_back(Soa(*zone));
  } else {
    int count = first.rfind("big", 0) == 0 ? 40 : 1;
    for (int i = 0; i < count; ++i) {
      dns::Record rr;
      rr.name = question.name;
      rr.type = question.type;
      rr.ttl = ttl_;
      if (question.type == dns::kTypeA) {
        uint8_t a[4];
        dns::Write32(a, a_record_ + static_cast<uint32_t>(i));
        rr.rdata.assign(reinterpret_cast<char*>(a), 4);
      } else {
        uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8};
        a[15] = static_cast<uint8_t>(i + 1);
        rr.rdata.assign(reinterpret_cast<char*>(a), 16);
      }
      r.answers.push_back(rr);
    }
  }
  auto wire = dns::WriteMessage(r);
  return wire.ok() ? *wire : std::vector<uint8_t>{};
}

void FakeUpstream::Run() {
  std::vector<Scheduled> scheduled;
  struct Conn {
    int fd;
    std::vector<uint8_t> buf;
  };
  std::vector<Conn> conns;
  std::vector<uint8_t> udp_buf(65536);
  auto schedule = [&](bool tcp, int fd, const sockaddr_storage* peer, socklen_t plen, std::vector<uint8_t> data,
                      int extra_delay_ms) {
    Scheduled s{Clock::now() + std::chrono::milliseconds(delay_ms_ + extra_delay_ms), tcp, fd, {}, plen,
                std::move(data)};
    if (peer) std::memcpy(&s.peer, peer, plen);
    scheduled.push_back(std::move(s));
  };
  auto respond_all = [&](const std::vector<uint8_t>& query, bool tcp, int fd, const sockaddr_storage* peer,
                         socklen_t plen) {
    bool drop = false;
    Mode mode = mode_;
    if (mode == Mode::kWrongThenRight) {
      auto wrong = Respond(query, tcp, Mode::kWrongQuestion, true, &drop);
      if (drop) return;
      schedule(tcp, fd, peer, plen, wrong, 0);
      schedule(tcp, fd, peer, plen, Respond(query, tcp, Mode::kAnswer, false, &drop), 100);
      return;
    }
    uint16_t port = 0;
    if (peer != nullptr) port = SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(peer)).port();
    auto resp = Respond(query, tcp, mode, true, &drop, port);
    if (drop) return;
    schedule(tcp, fd, peer, plen, resp, 0);
  };
  while (!stop_) {
    std::vector<pollfd> fds = {{udp_fd_, POLLIN, 0}, {tcp_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    for (auto& c : conns) fds.push_back({c.fd, POLLIN, 0});
    int timeout = 50;
    auto now = Clock::now();
    for (auto& s : scheduled) {
      int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(s.due - now).count());
      timeout = std::max(0, std::min(timeout, ms));
    }
    poll(fds.data(), fds.size(), timeout);
    // Every datagram waiting, not one per poll (a burst of thousands must not
    // queue up behind the poll loop and look like a slow upstream).
    for (int batch = 0; (fds[0].revents & POLLIN) && batch < 256; ++batch) {
      sockaddr_storage peer{};
      socklen_t plen = sizeof(peer);
      ssize_t n = recvfrom(udp_fd_, udp_buf.data(), udp_buf.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&peer),
                           &plen);
      if (n <= 0) break;
      respond_all(std::vector<uint8_t>(udp_buf.begin(), udp_buf.begin() + n), false, udp_fd_, &peer, plen);
    }
    if (fds[2].revents & POLLIN) {
      char drain[64];
      (void)!read(wake_[0], drain, sizeof(drain));
    }
    if (int asked = close_requested_; asked != close_done_) {
      for (auto& c : conns) close(c.fd);
      conns.clear();
      fds.resize(3);
      close_done_ = asked;
    }
    if (fds[1].revents & POLLIN) {
      int c = accept(tcp_fd_, nullptr, nullptr);
      if (c >= 0) {
        conns.push_back({c, {}});
        ++tcp_connections_;
      }
    }
    for (size_t i = 3; i < fds.size(); ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      Conn& c = conns[i - 3];
      uint8_t tmp[4096];
      ssize_t n = read(c.fd, tmp, sizeof(tmp));
      if (n <= 0) {
        close(c.fd);
        c.fd = -1;
        continue;
      }
      c.buf.insert(c.buf.end(), tmp, tmp + n);
      while (c.buf.size() >= 2 && c.buf.size() >= 2u + dns::Read16(c.buf.data())) {
        size_t len = dns::Read16(c.buf.data());
        std::vector<uint8_t> q(c.buf.begin() + 2, c.buf.begin() + 2 + static_cast<long>(len));
        c.buf.erase(c.buf.begin(), c.buf.begin() + 2 + static_cast<long>(len));
        respond_all(q, true, c.fd, nullptr, 0);
      }
    }
    std::erase_if(conns, [](const Conn& c) { return c.fd < 0; });
    now = Clock::now();
    for (auto it = scheduled.begin(); it != scheduled.end();) {
      if (it->due > now) {
        ++it;
        continue;
      }
      if (it->tcp) {
        bool open = false;
        for (auto& c : conns) open = open || c.fd == it->fd;
        if (open) {
          std::vector<uint8_t> framed(2);
          dns::Write16(framed.data(), static_cast<uint16_t>(it->data.size()));
          framed.insert(framed.end(), it->data.begin(), it->data.end());
          (void)!write(it->fd, framed.data(), framed.size());
        }
      } else {
        sendto(it->fd, it->data.data(), it->data.size(), 0, reinterpret_cast<sockaddr*>(&it->peer), it->peer_len);
      }
      it = scheduled.erase(it);
    }
  }
  for (auto& c : conns) close(c.fd);
}

void FakeUpstream::CloseTcpConnections() {
  int ticket = ++close_requested_;
  (void)!write(wake_[1], "c", 1);
  while (close_done_ < ticket) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

const char* ModeName(FakeUpstream::Mode m) {
  using Mode = FakeUpstream::Mode;
  switch (m) {
    case Mode::kAnswer: return "answer";
    case Mode::kDrop: return "drop";
    case Mode::kServFail: return "servfail";
    case Mode::kRefused: return "refused";
    case Mode::kGarbage: return "garbage";
    case Mode::kWrongQuestion: return "wrong-question";
    case Mode::kWrongThenRight: return "wrong-then-right";
    case Mode::kTruncateUdp: return "truncate-udp";
    case Mode::kNxAll: return "nxdomain-all";
  }
  return "?";
}

}  // namespace nodedns::testing
