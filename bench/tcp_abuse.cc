// Load generator for bench/tcp_abuse.sh: measures one DNS server (nodedns or
// Unbound) on 127.0.0.1:PORT before, during and after TCP abuse:
//  - UDP queries at a steady rate for cached names (p99 and losses);
//  - NEVER_READERS connections that pipeline queries for a large cached
//    answer and never read (reconnected when the server closes them);
//  - SLOWLORIS connections that send a frame one octet a second
//    (reconnected when closed);
//  - every 100 ms a new TCP client asks one query (served within 2 s or not);
//  - the server's RSS (VmRSS of PID), sampled every 100 ms.
// Two threads: the UDP measurement runs alone on its own socket, so that the
// abusers' bookkeeping (1,300 connections, reconnects) never delays a send or
// a receive timestamp; the abuse runs on one epoll loop. Both follow one
// timeline: phase p, then 1 s in which late answers still count for p.
// Loopback only; bounded by the phase durations.
//
// Environment UDP_CPU / ABUSE_CPU (optional): pin the UDP measurement thread
// and the abuse loop to these CPUs (tcp_abuse.sh's LAYOUT=split).
//
// Usage: nodedns_tcp_abuse PORT PID [NEVER_READERS SLOWLORIS BASE_S ABUSE_S AFTER_S UDP_QPS ABUSE_NICE UDP_PORT]
// UDP_PORT (default PORT): where the UDP load goes; another server's port
// measures what the abuse costs UDP through the machine alone (the control).
// Prints key=value lines.

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bench/wire_query.h"

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::duration;

uint16_t g_port;


std::string Framed(const std::string& m) {
  std::string f;
  f.push_back(static_cast<char>(m.size() >> 8));
  f.push_back(static_cast<char>(m.size()));
  return f + m;
}

int64_t Rss(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

sockaddr_in Server(uint16_t port = 0) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port ? port : g_port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sin;
}

// Non-blocking connect; -1 on immediate failure.
int StartConnect(int rcvbuf) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  sockaddr_in sin = Server();
  if (connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

enum class Kind { kNeverReader, kSlowloris, kProbe };

struct Conn {
  Kind kind;
  int fd = -1;
  size_t sent = 0;  // never-reader: offset in the payload; slowloris: octets sent
  Clock::time_point started;
  std::string in;   // probe: the answer so far
};

struct Phase {
  std::vector<double> udp_ms;
  uint64_t udp_sent = 0, udp_lost = 0;
  uint64_t probes = 0, probes_served = 0;
  int64_t rss_max = 0, rss_last = 0;
  uint64_t reconnects = 0;
};

double Quantile(std::vector<double> v, uint64_t lost, double q) {
  // Losses count as the slowest.
  for (uint64_t i = 0; i < lost; ++i) v.push_back(1e9);
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}
double P99(const std::vector<double>& v, uint64_t lost) { return Quantile(v, lost, 0.99); }

// The p99 of each second's answers (in the order they came); their median is
// what a typical second looked like. A virtual machine's host
// stalls us all now and then for 10-20 ms; the p99 over a whole phase shows
// such a stall, the typical second does not.
std::vector<double> SecondP99s(const std::vector<double>& v, size_t per_second) {
  std::vector<double> p99s;
  for (size_t i = 0; per_second > 0 && i + per_second <= v.size(); i += per_second) {
    p99s.push_back(P99(std::vector<double>(v.begin() + static_cast<std::ptrdiff_t>(i),
                                           v.begin() + static_cast<std::ptrdiff_t>(i + per_second)),
                       0));
  }
  return p99s;
}

// UDP at a steady rate for cached names, over the whole timeline; fills
// phases[p].udp_* for each phase.
void RunUdp(int udp, std::vector<std::string> queries, double udp_qps, Clock::time_point t0, const double* durations,
            Phase* phases) {
  prctl(PR_SET_TIMERSLACK, 1UL);  // wake for each send on time, not 50 us late
  std::vector<Clock::time_point> sent_at(65536);
  std::vector<bool> waiting(65536, false);
  uint16_t id = 0;
  auto receive = [&](Phase& ph) {
    auto t = Clock::now();
    char buf[4096];
    ssize_t n;
    while ((n = recv(udp, buf, sizeof(buf), MSG_DONTWAIT)) >= 12) {
      uint16_t got = static_cast<uint16_t>((static_cast<uint8_t>(buf[0]) << 8) | static_cast<uint8_t>(buf[1]));
      if (!waiting[got]) continue;
      waiting[got] = false;
      ph.udp_ms.push_back(duration<double, std::milli>(t - sent_at[got]).count());
    }
  };
  auto phase_start = t0;
  for (int p = 0; p < 3; ++p) {
    Phase& ph = phases[p];
    auto end = phase_start + std::chrono::duration_cast<Clock::duration>(duration<double>(durations[p]));
    auto next = phase_start;
    const auto interval = std::chrono::duration_cast<Clock::duration>(duration<double>(1.0 / udp_qps));
    while (Clock::now() < end) {
      auto now = Clock::now();
      while (next <= now) {
        std::string& q = queries[id % queries.size()];
        q[0] = static_cast<char>(id >> 8);
        q[1] = static_cast<char>(id);
        if (waiting[id]) ++ph.udp_lost;  // never answered within 65,536 queries
        sent_at[id] = Clock::now();
        waiting[id] = true;
        send(udp, q.data(), q.size(), 0);
        ++ph.udp_sent;
        ++id;
        next += interval;
      }
      // Sleep until an answer or the next send, to the microsecond: a poll
      // in whole milliseconds would spin (the interval is 0.5 ms at 2,000
      // qps) and take a core from the server it measures.
      pollfd pfd{udp, POLLIN, 0};
      const auto wait_ns = std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::nanoseconds>(next - Clock::now()).count());
      const timespec wait{static_cast<time_t>(wait_ns / 1'000'000'000), static_cast<long>(wait_ns % 1'000'000'000)};
      ppoll(&pfd, 1, &wait, nullptr);
      receive(ph);
    }
    // Answers for 1 s more count for this phase; then the rest is lost.
    auto drain_end = end + std::chrono::seconds(1);
    while (Clock::now() < drain_end) {
      pollfd pfd{udp, POLLIN, 0};
      poll(&pfd, 1, 10);
      receive(ph);
    }
    for (int i = 0; i < 65536; ++i) {
      if (waiting[i]) {
        waiting[i] = false;
        ++ph.udp_lost;
      }
    }
    phase_start = drain_end;
  }
}

}  // namespace

// Pins the calling thread to the CPU named by environment variable VAR, if set.
void PinTo(const char* var) {
  const char* cpu = std::getenv(var);
  if (cpu == nullptr || *cpu == '\0') return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(std::atoi(cpu), &set);
  if (int err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set); err != 0) {
    std::fprintf(stderr, "%s=%s: %s\n", var, cpu, std::strerror(err));
    std::exit(2);
  }
}

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s PORT PID [NEVER_READERS SLOWLORIS BASE_S ABUSE_S AFTER_S UDP_QPS ABUSE_NICE UDP_PORT]\n", argv[0]);
    return 2;
  }
  g_port = static_cast<uint16_t>(std::atoi(argv[1]));
  int pid = std::atoi(argv[2]);
  int never_readers = argc > 3 ? std::atoi(argv[3]) : 300;
  int slowloris = argc > 4 ? std::atoi(argv[4]) : 1000;
  double base_s = argc > 5 ? std::atof(argv[5]) : 10;
  double abuse_s = argc > 6 ? std::atof(argv[6]) : 20;
  double after_s = argc > 7 ? std::atof(argv[7]) : 5;
  double udp_qps = argc > 8 ? std::atof(argv[8]) : 2000;
  int abuse_nice = argc > 9 ? std::atoi(argv[9]) : 19;
  uint16_t udp_port = argc > 10 ? static_cast<uint16_t>(std::atoi(argv[10])) : g_port;

  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  int udp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in server = Server(udp_port);
  connect(udp, reinterpret_cast<sockaddr*>(&server), sizeof(server));
  constexpr int kNames = 1000;
  std::vector<std::string> udp_queries;
  for (int i = 0; i < kNames; ++i) udp_queries.push_back(nodedns::bench::WireQuery("n" + std::to_string(i) + ".abuse.example", 1, 0));

  // Warm the cache: every UDP name, and the large answer over TCP.
  for (int round = 0; round < 3; ++round) {
    for (auto& q : udp_queries) {
      send(udp, q.data(), q.size(), 0);
      usleep(200);
    }
    char buf[4096];
    usleep(200000);
    while (recv(udp, buf, sizeof(buf), 0) > 0) {
    }
  }
  {
    int fd = StartConnect(0);
    fcntl(fd, F_SETFL, 0);
    timeval tv{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::string q = Framed(nodedns::bench::WireQuery("big.example", 1, 1));
    usleep(10000);
    send(fd, q.data(), q.size(), MSG_NOSIGNAL);
    char buf[8192];
    recv(fd, buf, sizeof(buf), 0);
    close(fd);
  }

  // Never-readers pipeline 1,000 queries for big.example, over and over.
  std::string payload;
  for (int i = 0; i < 1000; ++i) payload += Framed(nodedns::bench::WireQuery("big.example", 1, static_cast<uint16_t>(i)));
  const std::string probe_query = Framed(nodedns::bench::WireQuery("big.example", 1, 0x4242));
  std::string slow_frame(102, '\0');
  slow_frame[1] = 100;

  std::unordered_map<int, Conn> conns;
  auto add = [&](Kind kind, Phase* ph) {
    int fd = StartConnect(kind == Kind::kNeverReader ? 4096 : 0);
    if (fd < 0) return;
    Conn c;
    c.kind = kind;
    c.fd = fd;
    c.started = Clock::now();
    epoll_event ev{};
    uint32_t events = EPOLLRDHUP;
    if (kind == Kind::kProbe) events |= EPOLLIN | EPOLLOUT;
    if (kind == Kind::kNeverReader) events |= EPOLLOUT;
    ev.events = events;
    ev.data.fd = fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    conns[fd] = std::move(c);
    if (ph && kind == Kind::kProbe) ++ph->probes;
  };
  auto drop = [&](int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    conns.erase(fd);
  };

  const char* names[] = {"before", "during", "after"};
  double durations[] = {base_s, abuse_s, after_s};
  Phase phases[3];
  const auto t0 = Clock::now();
  std::thread udp_thread([&] {
    PinTo("UDP_CPU");
    RunUdp(udp, udp_queries, udp_qps, t0, durations, phases);
  });
  PinTo("ABUSE_CPU");
  // The abusers' loop (this thread) yields the CPU to the server and the UDP
  // thread: on a 2-core machine its own work would otherwise show up as server
  // latency. A real attacker runs in another pod's cgroup or on another host.
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), abuse_nice);
  auto phase_start = t0;
  for (int p = 0; p < 3; ++p) {
    Phase& ph = phases[p];
    if (p == 1) {
      for (int i = 0; i < never_readers; ++i) add(Kind::kNeverReader, nullptr);
      for (int i = 0; i < slowloris; ++i) add(Kind::kSlowloris, nullptr);
    }
    if (p == 2) {
      std::vector<int> fds;
      for (auto& [fd, c] : conns) fds.push_back(fd);
      for (int fd : fds) drop(fd);
    }
    const auto start = phase_start;
    const auto end = start + std::chrono::duration_cast<Clock::duration>(duration<double>(durations[p]));
    phase_start = end + std::chrono::seconds(1);  // the UDP thread's drain second
    auto next_probe = start;
    auto next_trickle = start;
    auto next_rss = start;
    std::vector<Kind> comeback;
    while (Clock::now() < end) {
      auto now = Clock::now();
      // New TCP clients, RSS, slowloris octets.
      if (p == 1 && now >= next_probe) {
        add(Kind::kProbe, &ph);
        next_probe += std::chrono::milliseconds(100);
      }
      if (now >= next_rss) {
        ph.rss_last = Rss(pid);
        ph.rss_max = std::max(ph.rss_max, ph.rss_last);
        next_rss += std::chrono::milliseconds(100);
      }
      if (p == 1 && now >= next_trickle) {
        next_trickle += std::chrono::seconds(1);
        for (Kind kind : comeback) add(kind, nullptr);
        ph.reconnects += comeback.size();
        comeback.clear();
        for (auto& [fd, c] : conns) {
          if (c.kind != Kind::kSlowloris || c.sent >= slow_frame.size() - 1) continue;
          if (send(fd, slow_frame.data() + c.sent, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) ++c.sent;
        }
      }
      epoll_event evs[256];
      int k = epoll_wait(ep, evs, 256, 1);
      std::vector<int> closed;
      for (int i = 0; i < k; ++i) {
        int fd = evs[i].data.fd;
        auto it = conns.find(fd);
        if (it == conns.end()) continue;
        Conn& c = it->second;
        if (c.kind == Kind::kProbe) {
          if (evs[i].events & EPOLLOUT) {
            if (c.sent == 0) {
              send(fd, probe_query.data(), probe_query.size(), MSG_NOSIGNAL);
              c.sent = 1;
            }
            epoll_event ev{};
            ev.events = EPOLLIN | EPOLLRDHUP;
            ev.data.fd = fd;
            epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
          }
          char b[8192];
          ssize_t r;
          while ((r = recv(fd, b, sizeof(b), 0)) > 0) c.in.append(b, static_cast<size_t>(r));
          if (c.in.size() >= 2 &&
              c.in.size() >= 2 + size_t{static_cast<uint8_t>(c.in[0]) * 256u + static_cast<uint8_t>(c.in[1])}) {
            ++ph.probes_served;
            closed.push_back(fd);
          } else if (r == 0 || (r < 0 && errno != EAGAIN) || (evs[i].events & (EPOLLERR | EPOLLHUP))) {
            closed.push_back(fd);
          }
          continue;
        }
        if (evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
          closed.push_back(fd);
          continue;
        }
        if (c.kind == Kind::kNeverReader && (evs[i].events & EPOLLOUT)) {
          for (;;) {
            ssize_t w = send(fd, payload.data() + c.sent, payload.size() - c.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w <= 0) break;
            c.sent = (c.sent + static_cast<size_t>(w)) % payload.size();
          }
        }
      }
      // Probes that waited 2 s failed.
      for (auto& [fd, c] : conns) {
        if (c.kind == Kind::kProbe && now - c.started > std::chrono::seconds(2)) closed.push_back(fd);
      }
      for (int fd : closed) {
        auto it = conns.find(fd);
        if (it == conns.end()) continue;
        Kind kind = it->second.kind;
        drop(fd);
        // Abusers come back on the next tick (as slowloris tools do).
        if (p == 1 && kind != Kind::kProbe) comeback.push_back(kind);
      }
    }
    // The UDP thread's drain second: RSS keeps being sampled.
    while (Clock::now() < phase_start) {
      ph.rss_last = Rss(pid);
      ph.rss_max = std::max(ph.rss_max, ph.rss_last);
      usleep(100000);
    }
  }
  udp_thread.join();
  for (int p = 0; p < 3; ++p) {
    const Phase& ph = phases[p];
    std::printf("%s_rss_max_kib=%lld\n%s_rss_end_kib=%lld\n%s_udp_sent=%llu\n%s_udp_lost=%llu\n%s_udp_p99_ms=%.3f\n",
                names[p], static_cast<long long>(ph.rss_max), names[p], static_cast<long long>(ph.rss_last), names[p],
                static_cast<unsigned long long>(ph.udp_sent), names[p], static_cast<unsigned long long>(ph.udp_lost),
                names[p], P99(ph.udp_ms, ph.udp_lost));
    const std::vector<double> seconds = SecondP99s(ph.udp_ms, static_cast<size_t>(udp_qps));
    std::printf("%s_udp_p50_ms=%.3f\n%s_udp_p99_second_ms=%.3f\n", names[p], Quantile(ph.udp_ms, ph.udp_lost, 0.5),
                names[p], Quantile(seconds, 0, 0.5));  // the typical second
    std::printf("%s_udp_p99_seconds_ms=", names[p]);
    for (double ms : seconds) std::printf("%.2f ", ms);
    std::printf("\n");
  }
  std::printf("during_probes=%llu\nduring_probes_served=%llu\nduring_reconnects=%llu\n",
              static_cast<unsigned long long>(phases[1].probes),
              static_cast<unsigned long long>(phases[1].probes_served),
              static_cast<unsigned long long>(phases[1].reconnects));
  return 0;
}
