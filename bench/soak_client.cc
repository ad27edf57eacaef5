// Load generator for bench/soak.sh: a long mixed load on one DNS server at
// 127.0.0.1:PORT, reported per interval (a minute by default).
//
//   nodedns_soak --port=P [--seconds=600] [--interval=60] [--udp-qps=3000]
//                [--hit=65] [--miss=25] [--nx=10] [--hot=2000] [--nx-names=5000]
//                [--tcp-conns=4] [--tcp-burst=16] [--tcp-bursts-per-second=5]
//                [--tcp-reconnect-bursts=50] [--timeout-ms=3000] [--tag=T]
//
// UDP, from 4 sockets, at udp-qps: `hit` % hot names (h<i>.hot.soak.example,
// i < hot, A or AAAA: cached after the first minute, refreshed when their TTL
// runs out), `miss` % names never asked before (m<n>.<tag>.soak.example: each
// one an upstream query and a new cache entry, which keeps the cache full and
// evicting), `nx` % names from a pool the upstream answers NXDOMAIN
// (nx<i>.soak.example, i < nx-names: cached negative answers and misses).
// TCP: tcp-conns connections, each sending tcp-burst pipelined queries (the
// same mix) in one write tcp-bursts-per-second times a second, and replaced by
// a new connection after tcp-reconnect-bursts bursts (connection churn).
//
// Each interval prints one line of key=value pairs:
//   interval=N sent=.. answered=.. noerror=.. nxdomain=.. servfail=.. other=..
//   timeouts=.. errors=.. hit_errors=.. p50_ms=.. p99_ms=.. max_ms=..
//   hit_p99_ms=.. tcp_sent=.. tcp_answered=.. tcp_lost=.. reconnects=..
//   server_closed=..
// errors = timeouts (no answer within timeout-ms) + SERVFAIL + unexpected
// rcodes (REFUSED, FORMERR, NXDOMAIN for a name that exists) + TCP queries
// lost to a connection the server closed; hit_errors: those of hot names.
// reconnects: connections replaced by this client (churn); server_closed:
// connections the server closed.
// A query is counted in the interval it was sent in; the last interval line
// comes timeout-ms after the last query.
// One thread, epoll; loopback only; bounded: `seconds` of load, at most
// udp-qps x seconds UDP queries and the TCP bursts above.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "bench/wire_query.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  int port = 0;
  int seconds = 600;
  int interval = 60;
  int udp_qps = 3000;
  int hit = 65, miss = 25, nx = 10;
  int hot = 2000;
  int nx_names = 5000;
  int tcp_conns = 4;
  int tcp_burst = 16;
  int tcp_bursts_per_second = 5;
  int tcp_reconnect_bursts = 50;
  int timeout_ms = 3000;
  std::string tag = "t";
};

bool Flag(const char* arg, const char* name, int* out) {
  size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
  *out = std::atoi(arg + n + 1);
  return true;
}

enum Kind : uint8_t { kHit, kMiss, kNx };


// Per-interval tallies.
struct Tally {
  uint64_t sent = 0, answered = 0, noerror = 0, nxdomain = 0, servfail = 0, other = 0, timeouts = 0, errors = 0,
           hit_errors = 0, tcp_sent = 0, tcp_answered = 0, tcp_lost = 0, reconnects = 0, server_closed = 0;
  std::vector<float> lat_ms, hit_lat_ms;
};

// A channel is a UDP socket or a TCP connection; each has its own 16-bit ID
// space. Slot by ID: the outstanding query with that ID, if any.
struct Slot {
  Clock::time_point sent{};
  uint32_t gen = 0;  // bumped per use: a timed-out entry of the FIFO is stale when it differs
  int interval = 0;
  Kind kind = kHit;
  bool active = false;
};

struct Channel {
  int fd = -1;
  bool tcp = false;
  std::vector<Slot> slots = std::vector<Slot>(65536);
  uint16_t next_id = 1;
  int outstanding = 0;
  // TCP only.
  std::string in, out;
  int bursts = 0;
  bool connected = false;
  bool retiring = false;  // no more bursts; replaced once its answers are in
};

struct Pending {
  Clock::time_point deadline;
  int channel;
  uint16_t id;
  uint32_t gen;
};

class Soak {
 public:
  explicit Soak(const Args& a) : a_(a), rng_(12345) {}

  int Run();

 private:
  int UdpSocket();
  void OpenTcp(int c);
  void CloseTcp(int c, bool lost);
  void Send(int c, bool tcp_burst_member);
  void OnAnswer(int c, const uint8_t* p, size_t n);
  void Expire(Clock::time_point now);
  void ReadUdp(int c);
  void ReadTcp(int c);
  void FlushTcp(int c);
  void Print(int interval);
  Tally& T(int interval) {
    while (static_cast<int>(tallies_.size()) <= interval) tallies_.emplace_back();
    return tallies_[static_cast<size_t>(interval)];
  }
  std::string NextName(Kind* kind, uint16_t* type);

  Args a_;
  std::mt19937_64 rng_;
  int ep_ = -1;
  std::vector<Channel> ch_;
  int udp_channels_ = 4;
  std::deque<Pending> pending_;
  std::deque<Tally> tallies_;
  uint64_t miss_seq_ = 0;
  Clock::time_point t0_;
  int current_interval_ = 0;
};

int Soak::UdpSocket() {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  int buf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_port = htons(static_cast<uint16_t>(a_.port));
  s.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&s), sizeof(s)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void Soak::OpenTcp(int c) {
  Channel& ch = ch_[static_cast<size_t>(c)];
  ch.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(ch.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_port = htons(static_cast<uint16_t>(a_.port));
  s.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int r = connect(ch.fd, reinterpret_cast<sockaddr*>(&s), sizeof(s));
  ch.connected = r == 0;
  if (r != 0 && errno != EINPROGRESS) {
    close(ch.fd);
    ch.fd = -1;
    return;
  }
  ch.in.clear();
  ch.out.clear();
  ch.bursts = 0;
  ch.retiring = false;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | (ch.connected ? 0u : static_cast<uint32_t>(EPOLLOUT));
  ev.data.u32 = static_cast<uint32_t>(c);
  epoll_ctl(ep_, EPOLL_CTL_ADD, ch.fd, &ev);
}

// Closes a TCP channel; its outstanding queries are lost (an error) when
// `lost`, otherwise there are none.
void Soak::CloseTcp(int c, bool lost) {
  Channel& ch = ch_[static_cast<size_t>(c)];
  if (ch.fd >= 0) {
    epoll_ctl(ep_, EPOLL_CTL_DEL, ch.fd, nullptr);
    close(ch.fd);
    ch.fd = -1;
  }
  for (Slot& s : ch.slots) {
    if (!s.active) continue;
    s.active = false;
    ++s.gen;
    Tally& t = T(s.interval);
    if (lost) {
      ++t.tcp_lost;
      ++t.errors;
      if (s.kind == kHit) ++t.hit_errors;
    }
  }
  ch.outstanding = 0;
  ch.connected = false;
}

std::string Soak::NextName(Kind* kind, uint16_t* type) {
  int r = static_cast<int>(rng_() % static_cast<uint64_t>(a_.hit + a_.miss + a_.nx));
  *type = 1;
  if (r < a_.hit) {
    *kind = kHit;
    uint64_t i = rng_() % static_cast<uint64_t>(a_.hot);
    if (rng_() & 1) *type = 28;  // AAAA
    std::string n = "h";
    n.append(std::to_string(i)).append(".hot.soak.example");
    return n;
  }
  if (r < a_.hit + a_.miss) {
    *kind = kMiss;
    std::string n = "m";
    n.append(std::to_string(miss_seq_++)).append(".").append(a_.tag).append(".soak.example");
    return n;
  }
  *kind = kNx;
  std::string n = "nx";
  n.append(std::to_string(rng_() % static_cast<uint64_t>(a_.nx_names))).append(".soak.example");
  return n;
}

void Soak::Send(int c, bool tcp) {
  Channel& ch = ch_[static_cast<size_t>(c)];
  // Next free ID (an ID still outstanding is skipped; at most 65535 per channel).
  uint16_t id = ch.next_id;
  for (int tries = 0; tries < 65536 && (id == 0 || ch.slots[id].active); ++tries) ++id;
  if (id == 0 || ch.slots[id].active) return;
  ch.next_id = static_cast<uint16_t>(id + 1);
  Kind kind = kHit;
  uint16_t type = 1;
  std::string q = nodedns::bench::WireQuery(NextName(&kind, &type), type, id);
  auto now = Clock::now();
  Slot& s = ch.slots[id];
  s.sent = now;
  ++s.gen;
  s.interval = current_interval_;
  s.kind = kind;
  s.active = true;
  ++ch.outstanding;
  pending_.push_back({now + std::chrono::milliseconds(a_.timeout_ms), c, id, s.gen});
  Tally& t = T(current_interval_);
  ++t.sent;
  if (tcp) {
    ++t.tcp_sent;
    ch.out.push_back(static_cast<char>(q.size() >> 8));
    ch.out.push_back(static_cast<char>(q.size()));
    ch.out += q;
  } else if (send(ch.fd, q.data(), q.size(), 0) < 0) {
    // Not sent (socket buffer full): it will time out and count as an error.
  }
}

void Soak::OnAnswer(int c, const uint8_t* p, size_t n) {
  if (n < 12) return;
  Channel& ch = ch_[static_cast<size_t>(c)];
  uint16_t id = static_cast<uint16_t>((p[0] << 8) | p[1]);
  Slot& s = ch.slots[id];
  if (!s.active) return;  // late (timed out already) or not ours
  s.active = false;
  ++s.gen;
  --ch.outstanding;
  Tally& t = T(s.interval);
  ++t.answered;
  if (ch.tcp) ++t.tcp_answered;
  float ms = std::chrono::duration<float, std::milli>(Clock::now() - s.sent).count();
  t.lat_ms.push_back(ms);
  if (s.kind == kHit) t.hit_lat_ms.push_back(ms);
  int rcode = p[3] & 0x0f;
  bool error = false;
  if (rcode == 0) {
    ++t.noerror;
    error = s.kind == kNx;
  } else if (rcode == 3) {
    ++t.nxdomain;
    error = s.kind != kNx;
  } else if (rcode == 2) {
    ++t.servfail;
    error = true;
  } else {
    ++t.other;
    error = true;
  }
  if (error) {
    ++t.errors;
    if (s.kind == kHit) ++t.hit_errors;
  }
}

void Soak::Expire(Clock::time_point now) {
  while (!pending_.empty() && pending_.front().deadline <= now) {
    Pending p = pending_.front();
    pending_.pop_front();
    Channel& ch = ch_[static_cast<size_t>(p.channel)];
    Slot& s = ch.slots[p.id];
    if (!s.active || s.gen != p.gen) continue;
    s.active = false;
    ++s.gen;
    --ch.outstanding;
    Tally& t = T(s.interval);
    ++t.timeouts;
    ++t.errors;
    if (s.kind == kHit) ++t.hit_errors;
  }
}

void Soak::ReadUdp(int c) {
  uint8_t buf[4096];
  for (int i = 0; i < 512; ++i) {
    ssize_t n = recv(ch_[static_cast<size_t>(c)].fd, buf, sizeof(buf), 0);
    if (n <= 0) return;
    OnAnswer(c, buf, static_cast<size_t>(n));
  }
}

void Soak::ReadTcp(int c) {
  Channel& ch = ch_[static_cast<size_t>(c)];
  char buf[16384];
  for (;;) {
    ssize_t n = read(ch.fd, buf, sizeof(buf));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      ++T(current_interval_).server_closed;
      CloseTcp(c, true);  // closed by the server
      OpenTcp(c);
      return;
    }
    if (n < 0) break;
    ch.in.append(buf, static_cast<size_t>(n));
  }
  size_t off = 0;
  while (ch.in.size() - off >= 2) {
    size_t len = (static_cast<uint8_t>(ch.in[off]) << 8) | static_cast<uint8_t>(ch.in[off + 1]);
    if (ch.in.size() - off < 2 + len) break;
    OnAnswer(c, reinterpret_cast<const uint8_t*>(ch.in.data() + off + 2), len);
    off += 2 + len;
  }
  ch.in.erase(0, off);
}

void Soak::FlushTcp(int c) {
  Channel& ch = ch_[static_cast<size_t>(c)];
  while (ch.connected && !ch.out.empty()) {
    ssize_t n = write(ch.fd, ch.out.data(), ch.out.size());
    if (n <= 0) return;
    ch.out.erase(0, static_cast<size_t>(n));
  }
}

double Pct(std::vector<float>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

void Soak::Print(int interval) {
  Tally& t = T(interval);
  double p50 = Pct(t.lat_ms, 0.5), p99 = Pct(t.lat_ms, 0.99);
  double mx = t.lat_ms.empty() ? 0 : t.lat_ms.back();
  double hp99 = Pct(t.hit_lat_ms, 0.99);
  std::printf(
      "interval=%d sent=%llu answered=%llu noerror=%llu nxdomain=%llu servfail=%llu other=%llu timeouts=%llu "
      "errors=%llu hit_errors=%llu p50_ms=%.3f p99_ms=%.3f max_ms=%.1f hit_p99_ms=%.3f tcp_sent=%llu "
      "tcp_answered=%llu tcp_lost=%llu reconnects=%llu server_closed=%llu\n",
      interval + 1, static_cast<unsigned long long>(t.sent), static_cast<unsigned long long>(t.answered),
      static_cast<unsigned long long>(t.noerror), static_cast<unsigned long long>(t.nxdomain),
      static_cast<unsigned long long>(t.servfail), static_cast<unsigned long long>(t.other),
      static_cast<unsigned long long>(t.timeouts), static_cast<unsigned long long>(t.errors),
      static_cast<unsigned long long>(t.hit_errors), p50, p99, mx, hp99, static_cast<unsigned long long>(t.tcp_sent),
      static_cast<unsigned long long>(t.tcp_answered), static_cast<unsigned long long>(t.tcp_lost),
      static_cast<unsigned long long>(t.reconnects), static_cast<unsigned long long>(t.server_closed));
  std::fflush(stdout);
  t.lat_ms.clear();
  t.lat_ms.shrink_to_fit();
  t.hit_lat_ms.clear();
  t.hit_lat_ms.shrink_to_fit();
}

int Soak::Run() {
  ep_ = epoll_create1(0);
  ch_.resize(static_cast<size_t>(udp_channels_ + a_.tcp_conns));
  for (int c = 0; c < udp_channels_; ++c) {
    Channel& ch = ch_[static_cast<size_t>(c)];
    ch.fd = UdpSocket();
    if (ch.fd < 0) {
      std::perror("udp socket");
      return 1;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<uint32_t>(c);
    epoll_ctl(ep_, EPOLL_CTL_ADD, ch.fd, &ev);
  }
  for (int c = udp_channels_; c < static_cast<int>(ch_.size()); ++c) {
    ch_[static_cast<size_t>(c)].tcp = true;
    OpenTcp(c);
  }
  t0_ = Clock::now();
  const auto end = t0_ + std::chrono::seconds(a_.seconds);
  const uint64_t udp_total = static_cast<uint64_t>(a_.udp_qps) * static_cast<uint64_t>(a_.seconds);
  uint64_t udp_sent = 0;
  const auto burst_every = std::chrono::nanoseconds(1'000'000'000LL / std::max(1, a_.tcp_bursts_per_second));
  std::vector<Clock::time_point> next_burst(ch_.size(), t0_);
  for (size_t c = 0; c < ch_.size(); ++c) next_burst[c] = t0_ + burst_every * static_cast<int64_t>(c) / 7;
  int printed = 0;
  const int intervals = (a_.seconds + a_.interval - 1) / a_.interval;
  int udp_rr = 0;
  epoll_event evs[64];
  for (;;) {
    auto now = Clock::now();
    bool loading = now < end;
    if (loading) {
      current_interval_ =
          static_cast<int>(std::chrono::duration_cast<std::chrono::seconds>(now - t0_).count() / a_.interval);
    }
    // UDP at the rate.
    if (loading) {
      uint64_t due = std::min<uint64_t>(
          udp_total, static_cast<uint64_t>(std::chrono::duration<double>(now - t0_).count() * a_.udp_qps));
      for (int k = 0; udp_sent < due && k < 1000; ++k, ++udp_sent) {
        Send(udp_rr, false);
        udp_rr = (udp_rr + 1) % udp_channels_;
      }
    }
    // TCP bursts, connection churn.
    for (int c = udp_channels_; c < static_cast<int>(ch_.size()); ++c) {
      Channel& ch = ch_[static_cast<size_t>(c)];
      if (ch.fd < 0) {
        if (loading) OpenTcp(c);
        continue;
      }
      if (ch.retiring) {
        if (ch.outstanding == 0) {
          CloseTcp(c, false);
          if (loading) {
            OpenTcp(c);
            ++T(current_interval_).reconnects;
          }
        }
        continue;
      }
      if (!loading || now < next_burst[static_cast<size_t>(c)]) continue;
      next_burst[static_cast<size_t>(c)] += burst_every;
      if (!ch.connected || ch.outstanding > 4 * a_.tcp_burst) continue;  // behind: skip this burst
      for (int k = 0; k < a_.tcp_burst; ++k) Send(c, true);
      FlushTcp(c);
      if (++ch.bursts >= a_.tcp_reconnect_bursts) ch.retiring = true;
    }
    Expire(now);
    // An interval is complete timeout-ms after its last query: every query
    // sent in it is answered or timed out by then.
    while (printed < intervals &&
           now >= t0_ + std::chrono::seconds(std::min((printed + 1) * a_.interval, a_.seconds)) +
                      std::chrono::milliseconds(a_.timeout_ms) + std::chrono::milliseconds(5)) {
      Print(printed++);
    }
    if (printed >= intervals) break;
    int n = epoll_wait(ep_, evs, 64, 1);
    for (int i = 0; i < n; ++i) {
      int c = static_cast<int>(evs[i].data.u32);
      Channel& ch = ch_[static_cast<size_t>(c)];
      if (ch.fd < 0) continue;
      if (!ch.tcp) {
        ReadUdp(c);
        continue;
      }
      if ((evs[i].events & EPOLLOUT) && !ch.connected) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(ch.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          CloseTcp(c, true);
          continue;
        }
        ch.connected = true;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.u32 = static_cast<uint32_t>(c);
        epoll_ctl(ep_, EPOLL_CTL_MOD, ch.fd, &ev);
      }
      if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) ReadTcp(c);
      if (ch_[static_cast<size_t>(c)].fd >= 0) FlushTcp(c);
    }
  }
  for (auto& ch : ch_) {
    if (ch.fd >= 0) close(ch.fd);
  }
  close(ep_);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const char* v = argv[i];
    if (std::strncmp(v, "--tag=", 6) == 0) {
      a.tag = v + 6;
      continue;
    }
    if (!(Flag(v, "--port", &a.port) || Flag(v, "--seconds", &a.seconds) || Flag(v, "--interval", &a.interval) ||
          Flag(v, "--udp-qps", &a.udp_qps) || Flag(v, "--hit", &a.hit) || Flag(v, "--miss", &a.miss) ||
          Flag(v, "--nx", &a.nx) || Flag(v, "--hot", &a.hot) || Flag(v, "--nx-names", &a.nx_names) ||
          Flag(v, "--tcp-conns", &a.tcp_conns) || Flag(v, "--tcp-burst", &a.tcp_burst) ||
          Flag(v, "--tcp-bursts-per-second", &a.tcp_bursts_per_second) ||
          Flag(v, "--tcp-reconnect-bursts", &a.tcp_reconnect_bursts) || Flag(v, "--timeout-ms", &a.timeout_ms))) {
      std::fprintf(stderr, "unknown argument %s\n", v);
      return 2;
    }
  }
  if (a.port <= 0 || a.seconds <= 0 || a.seconds > 24 * 3600 || a.interval <= 0 || a.udp_qps < 0 ||
      a.udp_qps > 200000 || a.hit < 0 || a.miss < 0 || a.nx < 0 || a.hit + a.miss + a.nx <= 0 || a.hot <= 0 ||
      a.nx_names <= 0 || a.tcp_conns < 0 || a.tcp_conns > 256 || a.tcp_burst < 0 || a.tcp_burst > 1000 ||
      a.tcp_bursts_per_second <= 0 || a.tcp_bursts_per_second > 1000 || a.tcp_reconnect_bursts <= 0 ||
      a.timeout_ms <= 0 || a.timeout_ms > 60000) {
    std::fprintf(stderr, "need --port; at most a day, 200000 qps, 256 TCP connections (see the header)\n");
    return 2;
  }
  return Soak(a).Run();
}
