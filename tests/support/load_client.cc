#include "tests/support/load_client.h"

#include <poll.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/dns/message.h"
#include "tests/support/dns_client.h"

namespace nodedns::testing {

LoadClient::LoadClient(uint16_t port, std::vector<std::string> names, int qps, std::chrono::milliseconds duration)
    : port_(port), names_(std::move(names)), qps_(qps), duration_(duration) {
  thread_ = std::thread([this] { Run(); });
}

LoadClient::~LoadClient() { Join(); }

void LoadClient::Join() {
  if (thread_.joinable()) thread_.join();
}

void LoadClient::Run() {
  int fd = ConnectLoopback(SOCK_DGRAM, port_);
  if (fd < 0) return;
  int rcvbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  const size_t total = static_cast<size_t>(qps_) * static_cast<size_t>(duration_.count()) / 1000;
  results_.resize(std::min<size_t>(total, 65535));
  auto start = Clock::now();
  auto interval = std::chrono::nanoseconds(1'000'000'000LL / qps_);
  size_t next = 0, outstanding = 0;
  auto last_send = start;
  std::vector<uint8_t> buf(4096);
  while (true) {
    auto now = Clock::now();
    if (next < results_.size() && now >= start + interval * static_cast<int64_t>(next)) {
      Result& r = results_[next];
      r.name_index = next % names_.size();
      QueryOptions o;
      o.id = static_cast<uint16_t>(next + 1);
      auto q = MakeQuery(names_[r.name_index], 1, o);
      r.sent = Clock::now();
      send(fd, q.data(), q.size(), 0);
      last_send = r.sent;
      ++next;
      ++outstanding;
      continue;
    }
    if (next >= results_.size() && (outstanding == 0 || now > last_send + std::chrono::seconds(2))) break;
    // Sleep until the next send is due or an answer arrives, with nanosecond
    // precision: a millisecond poll() would spin a core at 1 ms intervals and
    // steal CPU from the server being measured.
    auto wait = next < results_.size() ? start + interval * static_cast<int64_t>(next) - now
                                       : Clock::duration(std::chrono::milliseconds(50));
    int64_t ns = std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count());
    timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    pollfd p{fd, POLLIN, 0};
    if (ppoll(&p, 1, &ts, nullptr) != 1) continue;
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n < 12) continue;
    auto received = Clock::now();
    uint16_t id = dns::Read16(buf.data());
    if (id == 0 || id > results_.size()) continue;
    Result& r = results_[id - 1];
    if (r.answered) continue;
    r.answered = true;
    r.received = received;
    --outstanding;
    auto m = dns::ParseMessage({buf.data(), static_cast<size_t>(n)});
    if (!m.ok()) continue;
    r.rcode = m->rcode();
    if (!m->answers.empty()) {
      r.ttl = m->answers[0].ttl;
      r.rdata = m->answers[0].rdata;
    }
    if (m->edns) {
      for (const auto& opt : m->edns->options) {
        if (opt.code == dns::kOptionExtendedError && opt.data.size() >= 2) {
          r.ede = dns::Read16(reinterpret_cast<const uint8_t*>(opt.data.data()));
          break;
        }
      }
    }
  }
  close(fd);
}

}  // namespace nodedns::testing
