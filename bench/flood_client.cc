// Load generator for bench/flood.sh: one client floods unique names while
// another (the victim) asks new names and names it cached before, each from
// its own loopback source address. Reports what the victim got and how much
// the server's RSS grew.
//
//   nodedns_flood --port=P --pid=SERVER_PID [--flood-from=127.0.0.2] [--victim-from=127.0.0.3]
//                 [--flood-qps=30000] [--seconds=25] [--victim-qps=100] [--victim-new=1500]
//                 [--victim-cached=1500] [--tag=T] [--timeout-ms=2000]
//
// Phases: (1) the victim warms `victim-cached` names (answers awaited, one
// retry); (2) the flood runs for `seconds`; after 2 s the victim asks its new
// names at victim-qps and, interleaved, its cached names at the same rate,
// one try each, no retry; (3) 2 s of grace for late answers. A victim query
// counts when it is answered NOERROR within timeout-ms. The server's RSS is
// read from /proc before the flood and every 100 ms during it.
// Bounded: at most flood-qps x seconds queries; loopback only.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/wire_query.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  int port = 0;
  int pid = 0;
  std::string flood_from = "127.0.0.2";
  std::string victim_from = "127.0.0.3";
  int flood_qps = 30000;
  int seconds = 25;
  int victim_qps = 100;
  int victim_new = 1500;
  int victim_cached = 1500;
  std::string tag = "t";
  int timeout_ms = 2000;
};

bool Flag(const char* arg, const char* name, std::string* out) {
  size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
  *out = arg + n + 1;
  return true;
}

int Socket(const std::string& from, int port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return -1;
  int buf = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, from.c_str(), &a.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return -1;
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &s.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&s), sizeof(s)) != 0) return -1;
  return fd;
}


long RssKb(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

void SleepUntil(Clock::time_point t) {
  auto d = t - Clock::now();
  if (d <= Clock::duration::zero()) return;
  int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  nanosleep(&ts, nullptr);
}

// The victim: queries by ID (1..), sent at given times; answers matched by ID.
struct Victim {
  struct Q {
    std::string name;
    bool cached = false;
    Clock::time_point sent{};
    bool ok = false;  // NOERROR within the timeout
    double latency_ms = -1;
  };
  std::vector<Q> qs;
  int fd = -1;

  void Drain(int timeout_ms, std::chrono::milliseconds limit) {
    uint8_t buf[4096];
    pollfd p{fd, POLLIN, 0};
    while (poll(&p, 1, timeout_ms) == 1) {
      ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n < 12) continue;
      size_t id = (size_t{buf[0]} << 8) | buf[1];
      if (id == 0 || id > qs.size()) continue;
      Q& q = qs[id - 1];
      if (q.latency_ms >= 0) continue;
      auto lat = Clock::now() - q.sent;
      q.latency_ms = std::chrono::duration<double, std::milli>(lat).count();
      q.ok = (buf[3] & 0x0f) == 0 && lat <= limit;
      timeout_ms = 0;
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string v;
    if (Flag(argv[i], "--port", &v)) a.port = std::atoi(v.c_str());
    else if (Flag(argv[i], "--pid", &v)) a.pid = std::atoi(v.c_str());
    else if (Flag(argv[i], "--flood-from", &v)) a.flood_from = v;
    else if (Flag(argv[i], "--victim-from", &v)) a.victim_from = v;
    else if (Flag(argv[i], "--flood-qps", &v)) a.flood_qps = std::atoi(v.c_str());
    else if (Flag(argv[i], "--seconds", &v)) a.seconds = std::atoi(v.c_str());
    else if (Flag(argv[i], "--victim-qps", &v)) a.victim_qps = std::atoi(v.c_str());
    else if (Flag(argv[i], "--victim-new", &v)) a.victim_new = std::atoi(v.c_str());
    else if (Flag(argv[i], "--victim-cached", &v)) a.victim_cached = std::atoi(v.c_str());
    else if (Flag(argv[i], "--tag", &v)) a.tag = v;
    else if (Flag(argv[i], "--timeout-ms", &v)) a.timeout_ms = std::atoi(v.c_str());
    else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (a.port <= 0 || a.victim_new + 2 * a.victim_cached > 60000 || a.seconds > 600 || a.flood_qps > 1'000'000) {
    std::fprintf(stderr, "need --port; at most 60000 victim queries, 600 s, 1M qps\n");
    return 2;
  }
  Victim v;
  v.fd = Socket(a.victim_from, a.port);
  int flood_fd = Socket(a.flood_from, a.port);
  if (v.fd < 0 || flood_fd < 0) {
    std::perror("socket");
    return 1;
  }
  const auto limit = std::chrono::milliseconds(a.timeout_ms);

  // (1) Warm the victim's cached names: two passes, answers awaited.
  std::vector<std::string> cached;
  for (int i = 0; i < a.victim_cached; ++i) cached.push_back("k" + std::to_string(i) + "." + a.tag + ".victim.example");
  int warmed = 0;
  for (int pass = 0; pass < 2; ++pass) {
    v.qs.clear();
    for (const auto& n : cached) v.qs.push_back({n, true});
    auto t0 = Clock::now();
    for (size_t i = 0; i < v.qs.size(); ++i) {
      SleepUntil(t0 + std::chrono::microseconds(1000) * static_cast<int64_t>(i));  // 1000 qps
      auto q = nodedns::bench::WireQuery(v.qs[i].name, 1, static_cast<uint16_t>(i + 1));
      v.qs[i].sent = Clock::now();
      send(v.fd, q.data(), q.size(), 0);
      v.Drain(0, std::chrono::seconds(5));
    }
    v.Drain(1000, std::chrono::seconds(5));
    warmed = static_cast<int>(std::count_if(v.qs.begin(), v.qs.end(), [](const Victim::Q& q) { return q.ok; }));
  }

  // (2) The flood, and the victim in the middle of it.
  const long rss_before = a.pid ? RssKb(a.pid) : -1;
  std::atomic<long> rss_peak{rss_before};
  std::atomic<bool> flooding{true};
  std::atomic<uint64_t> flood_sent{0}, flood_answers{0}, flood_noerror{0};
  std::thread flood([&] {
    constexpr int kBatch = 32;
    std::vector<std::string> qs(kBatch);
    mmsghdr out[kBatch] = {};
    iovec iov[kBatch];
    uint8_t in_buf[kBatch][512];
    mmsghdr in[kBatch] = {};
    iovec in_iov[kBatch];
    for (int i = 0; i < kBatch; ++i) {
      in_iov[i] = {in_buf[i], sizeof(in_buf[i])};
      in[i].msg_hdr.msg_iov = &in_iov[i];
      in[i].msg_hdr.msg_iovlen = 1;
    }
    const uint64_t total = static_cast<uint64_t>(a.flood_qps) * static_cast<uint64_t>(a.seconds);
    auto t0 = Clock::now();
    uint64_t sent = 0;
    while (sent < total) {
      auto now = Clock::now();
      uint64_t due = static_cast<uint64_t>(std::chrono::duration<double>(now - t0).count() * a.flood_qps);
      due = std::min(due, total);
      while (sent < due) {
        int n = static_cast<int>(std::min<uint64_t>(kBatch, due - sent));
        for (int i = 0; i < n; ++i) {
          qs[i] = nodedns::bench::WireQuery("f" + std::to_string(sent + static_cast<uint64_t>(i)) + "." + a.tag + ".flood.example", 1,
                                   static_cast<uint16_t>(sent + static_cast<uint64_t>(i)));
          iov[i] = {qs[i].data(), qs[i].size()};
          out[i].msg_hdr.msg_iov = &iov[i];
          out[i].msg_hdr.msg_iovlen = 1;
        }
        int k = sendmmsg(flood_fd, out, static_cast<unsigned>(n), 0);
        if (k <= 0) break;
        sent += static_cast<uint64_t>(k);
      }
      int r;
      while ((r = recvmmsg(flood_fd, in, kBatch, MSG_DONTWAIT, nullptr)) > 0) {
        flood_answers += static_cast<uint64_t>(r);
        for (int i = 0; i < r; ++i) flood_noerror += in[i].msg_len >= 12 && (in_buf[i][3] & 0x0f) == 0;
      }
      SleepUntil(now + std::chrono::microseconds(500));
    }
    flood_sent = sent;
    flooding = false;
  });
  std::thread rss([&] {
    while (flooding) {
      if (a.pid) rss_peak = std::max<long>(rss_peak, RssKb(a.pid));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });

  v.qs.clear();
  auto start = Clock::now() + std::chrono::seconds(2);
  auto interval = std::chrono::nanoseconds(1'000'000'000LL / std::max(1, a.victim_qps));
  for (int i = 0; i < std::max(a.victim_new, a.victim_cached); ++i) {
    if (i < a.victim_new) v.qs.push_back({"n" + std::to_string(i) + "." + a.tag + ".victim.example", false});
    if (i < a.victim_cached) v.qs.push_back({cached[static_cast<size_t>(i)], true});
  }
  for (size_t i = 0; i < v.qs.size(); ++i) {
    // New and cached names alternate; each kind at victim-qps.
    auto due = start + interval * static_cast<int64_t>(i / 2);
    while (Clock::now() < due) {
      v.Drain(0, limit);
      SleepUntil(std::min(due, Clock::now() + std::chrono::milliseconds(1)));
    }
    auto q = nodedns::bench::WireQuery(v.qs[i].name, 1, static_cast<uint16_t>(i + 1));
    v.qs[i].sent = Clock::now();
    send(v.fd, q.data(), q.size(), 0);
  }
  auto victim_done = Clock::now();
  while (Clock::now() < victim_done + limit) v.Drain(10, limit);
  flood.join();
  rss.join();
  v.Drain(200, limit);

  int new_ok = 0, new_sent = 0, cached_ok = 0, cached_sent = 0;
  std::vector<double> lat_new;
  for (const auto& q : v.qs) {
    (q.cached ? cached_sent : new_sent)++;
    if (q.ok) (q.cached ? cached_ok : new_ok)++;
    if (!q.cached && q.latency_ms >= 0) lat_new.push_back(q.latency_ms);
  }
  std::sort(lat_new.begin(), lat_new.end());
  auto pct = [&](double p) {
    return lat_new.empty() ? -1.0 : lat_new[std::min(lat_new.size() - 1, static_cast<size_t>(p * lat_new.size()))];
  };
  std::printf("warmed %d of %d\n", warmed, a.victim_cached);
  std::printf("flood_sent %llu\nflood_answered %llu\nflood_noerror %llu\n",
              static_cast<unsigned long long>(flood_sent.load()), static_cast<unsigned long long>(flood_answers.load()),
              static_cast<unsigned long long>(flood_noerror.load()));
  std::printf("victim_new %d %d\nvictim_cached %d %d\n", new_ok, new_sent, cached_ok, cached_sent);
  std::printf("victim_new_latency_ms p50 %.1f p99 %.1f\n", pct(0.5), pct(0.99));
  std::printf("rss_kb before %ld peak %ld\n", rss_before, rss_peak.load());
  return 0;
}
