#include "lib/mirror/axfr.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <random>

#include "lib/common/clock.h"
#include "lib/common/errno_status.h"
#include "lib/dns/constants.h"
#include "lib/dns/name.h"

namespace nodedns::mirror {
namespace {

// A socket closed on every path out.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

absl::Time Now() { return SystemSteadyClock::Get()->Now(); }

// Set by the calls below for the helpers (one transfer per thread at a time).
thread_local const std::atomic<bool>* t_cancel = nullptr;

// Waits for `events` until `deadline`; DeadlineExceeded when it passes,
// Cancelled when t_cancel turns true (looked at every 100 ms).
absl::Status Wait(int fd, short events, absl::Time deadline, const std::string& what) {
  for (;;) {
    if (t_cancel && t_cancel->load(std::memory_order_relaxed)) return absl::CancelledError(what + ": stopping");
    absl::Duration left = std::min(deadline - Now(), absl::Milliseconds(100));
    if (deadline <= Now()) return absl::DeadlineExceededError(what + ": timed out");
    pollfd p{fd, events, 0};
    int n = poll(&p, 1, static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(left))));
    if (n > 0) return absl::OkStatus();
    if (n < 0 && errno != EINTR) return ErrnoStatus(errno, what);
  }
}

absl::StatusOr<int> ConnectTo(const SocketAddress& server, int type, absl::Time deadline) {
  int fd = socket(server.family(), type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return ErrnoStatus(errno, "socket");
  if (connect(fd, server.sockaddr_ptr(), server.length()) != 0 && errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    return ErrnoStatus(e, "connect to " + server.ToString());
  }
  if (type == SOCK_STREAM) {
    if (auto st = Wait(fd, POLLOUT, deadline, "connect to " + server.ToString()); !st.ok()) {
      close(fd);
      return st;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      close(fd);
      return ErrnoStatus(err, "connect to " + server.ToString());
    }
  }
  return fd;
}

absl::Status SendAll(int fd, const std::vector<uint8_t>& data, absl::Time deadline) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (auto st = Wait(fd, POLLOUT, deadline, "send"); !st.ok()) return st;
    } else {
      return ErrnoStatus(errno, "send");
    }
  }
  return absl::OkStatus();
}

// Exactly `n` bytes into `out`; an error if the peer closes first.
absl::Status ReadExactly(int fd, uint8_t* out, size_t n, absl::Time deadline) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = recv(fd, out + done, n - done, 0);
    if (r > 0) {
      done += static_cast<size_t>(r);
    } else if (r == 0) {
      return absl::UnavailableError("the server closed the connection mid-transfer");
    } else if (errno == EAGAIN || errno == EINTR) {
      if (auto st = Wait(fd, POLLIN, deadline, "transfer"); !st.ok()) return st;
    } else {
      return ErrnoStatus(errno, "recv");
    }
  }
  return absl::OkStatus();
}

std::vector<uint8_t> Query(const std::string& zone_wire, uint16_t type, uint16_t id) {
  dns::Message q;
  q.id = id;
  q.questions.push_back({zone_wire, type, dns::kClassIN});
  return *dns::WriteMessage(q);
}

uint16_t RandomId() {
  static thread_local std::mt19937 rng{std::random_device{}()};
  return static_cast<uint16_t>(rng());
}

// The checks every message of an answer passes: ours, a response, NOERROR.
absl::Status CheckAnswer(const dns::Message& m, uint16_t id, const std::string& what) {
  if (m.id != id || !(m.flags & dns::kFlagQR)) return absl::DataLossError(what + ": not an answer to our query");
  if (m.rcode() != dns::kNoError) {
    return absl::FailedPreconditionError(what + ": refused by the server (rcode " + std::to_string(m.rcode()) + ")");
  }
  return absl::OkStatus();
}

}  // namespace

std::optional<uint32_t> SoaSerial(const std::string& rdata) {
  size_t pos = 0;
  for (int name = 0; name < 2; ++name) {
    for (;;) {
      if (pos >= rdata.size()) return std::nullopt;
      uint8_t len = static_cast<uint8_t>(rdata[pos]);
      if (len > 63) return std::nullopt;  // uncompressed names only
      pos += 1 + len;
      if (len == 0) break;
    }
  }
  if (pos + 20 != rdata.size()) return std::nullopt;
  auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(rdata[pos + i])); };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

absl::StatusOr<uint32_t> QuerySerial(const SocketAddress& server, const std::string& zone_wire,
                                     absl::Duration timeout, const std::atomic<bool>* cancel) {
  t_cancel = cancel;
  absl::Time deadline = Now() + timeout;
  uint16_t id = RandomId();
  std::vector<uint8_t> query = Query(zone_wire, dns::kTypeSOA, id);
  auto fd = ConnectTo(server, SOCK_DGRAM, deadline);
  if (!fd.ok()) return fd.status();
  Fd sock(*fd);
  if (auto st = SendAll(sock.get(), query, deadline); !st.ok()) return st;
  uint8_t buf[4096];
  for (;;) {
    if (auto st = Wait(sock.get(), POLLIN, deadline, "SOA query to " + server.ToString()); !st.ok()) return st;
    ssize_t n = recv(sock.get(), buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return ErrnoStatus(errno, "SOA query to " + server.ToString());
    }
    auto m = dns::ParseMessage({buf, static_cast<size_t>(n)});
    if (!m.ok() || m->id != id) continue;  // not ours: keep waiting
    if (auto st = CheckAnswer(*m, id, "SOA query"); !st.ok()) return st;
    for (const dns::Record& r : m->answers) {
      if (r.type == dns::kTypeSOA && dns::Lowercase(r.name) == zone_wire) {
        if (auto serial = SoaSerial(r.rdata)) return *serial;
      }
    }
    return absl::NotFoundError("no SOA for the zone in the answer from " + server.ToString());
  }
}

absl::StatusOr<Zone> Transfer(const SocketAddress& server, const std::string& zone_wire,
                              const TransferLimits& limits, const std::atomic<bool>* cancel) {
  t_cancel = cancel;
  absl::Time deadline = Now() + limits.timeout;
  uint16_t id = RandomId();
  std::vector<uint8_t> query = Query(zone_wire, dns::kTypeAXFR, id);
  std::vector<uint8_t> framed = {static_cast<uint8_t>(query.size() >> 8), static_cast<uint8_t>(query.size())};
  framed.insert(framed.end(), query.begin(), query.end());
  auto fd = ConnectTo(server, SOCK_STREAM, deadline);
  if (!fd.ok()) return fd.status();
  Fd sock(*fd);
  if (auto st = SendAll(sock.get(), framed, deadline); !st.ok()) return st;
  ZoneAssembler assembler(zone_wire, id, limits);
  std::vector<uint8_t> msg;
  while (!assembler.done()) {
    uint8_t len[2];
    if (auto st = ReadExactly(sock.get(), len, 2, deadline); !st.ok()) return st;
    msg.resize((static_cast<size_t>(len[0]) << 8) | len[1]);
    if (auto st = ReadExactly(sock.get(), msg.data(), msg.size(), deadline); !st.ok()) return st;
    if (auto st = assembler.Feed(msg); !st.ok()) return st;
  }
  return assembler.Take();
}

absl::Status ZoneAssembler::Feed(absl::Span<const uint8_t> message) {
  if (done_) return absl::DataLossError("transfer: a message after the closing SOA");
  zone_.bytes += message.size() + 2;
  if (zone_.bytes > limits_.max_bytes) {
    return absl::ResourceExhaustedError("zone over the cap of " + std::to_string(limits_.max_bytes) + " bytes");
  }
  auto m = dns::ParseMessage(message);
  if (!m.ok()) return absl::DataLossError("transfer: a message that does not parse: " + std::string(m.status().message()));
  if (auto st = CheckAnswer(*m, id_, "transfer"); !st.ok()) return st;
  if (m->answers.empty()) return absl::DataLossError("transfer: a message without records");
  for (dns::Record& r : m->answers) {
    if (done_) return absl::DataLossError("transfer: records after the closing SOA");
    bool zone_soa = r.type == dns::kTypeSOA && dns::Lowercase(r.name) == zone_wire_;
    if (!opened_) {
      auto serial = zone_soa ? SoaSerial(r.rdata) : std::nullopt;
      if (!serial) return absl::DataLossError("transfer does not start with the zone's SOA");
      zone_.serial = *serial;
      zone_.soa = r;
      opened_ = true;
      continue;
    }
    if (zone_soa) {
      // The closing SOA: the transfer is whole (RFC 5936 2.2).
      if (SoaSerial(r.rdata) != zone_.serial) return absl::DataLossError("transfer: the zone changed during it");
      done_ = true;
      continue;
    }
    if (zone_.records.size() >= limits_.max_records) {
      return absl::ResourceExhaustedError("zone over the cap of " + std::to_string(limits_.max_records) + " records");
    }
    zone_.records.push_back(std::move(r));
  }
  return absl::OkStatus();
}

}  // namespace nodedns::mirror
