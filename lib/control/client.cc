#include "lib/control/client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "lib/common/clock.h"
#include "lib/common/errno_status.h"
#include "lib/control/protocol.h"
#include "lib/control/unix_socket.h"

namespace nodedns::control {

namespace {

// One connection: sends `line` and reads the answer until the daemon closes.
// *cut is set when the daemon closed it before taking the request (with its
// slots full of idle connections it cuts the oldest; under a flood that can
// be ours, between our connect and our write): nothing was done, and trying
// again is safe.
absl::StatusOr<std::string> ExchangeOnce(const std::string& path, const std::string& line, absl::Time deadline,
                                         absl::Duration timeout, bool* cut) {
  *cut = false;
  auto fd = ConnectUnix(path);
  if (!fd.ok()) return fd.status();
  size_t sent = 0;
  while (sent < line.size()) {
    // MSG_NOSIGNAL: a closed connection is an error to report, not SIGPIPE.
    ssize_t n = send(*fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *cut = errno == EPIPE || errno == ECONNRESET;
      absl::Status st = ErrnoStatus(errno, "sending to " + path);
      close(*fd);
      return st;
    }
    sent += static_cast<size_t>(n);
  }
  std::string in;
  char buf[65536];
  for (;;) {
    int wait_ms = static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - SystemSteadyClock::Get()->Now())));
    pollfd p{*fd, POLLIN, 0};
    int rc = poll(&p, 1, wait_ms);
    if (rc == 0) {
      close(*fd);
      return absl::DeadlineExceededError("no answer on " + path + " within " + absl::FormatDuration(timeout));
    }
    if (rc < 0 && errno == EINTR) continue;
    ssize_t n = read(*fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *cut = in.empty() && (n == 0 || errno == ECONNRESET);
      break;
    }
    in.append(buf, static_cast<size_t>(n));
  }
  close(*fd);
  return in;
}

}  // namespace

absl::StatusOr<nlohmann::json> Call(const std::string& path, const nlohmann::json& request, absl::Duration timeout) {
  const std::string line = request.dump() + "\n";
  absl::Time deadline = SystemSteadyClock::Get()->Now() + timeout;
  absl::StatusOr<std::string> in;
  bool cut = false;
  for (int attempt = 0; attempt < 3; ++attempt) {
    in = ExchangeOnce(path, line, deadline, timeout, &cut);
    if (!cut || SystemSteadyClock::Get()->Now() >= deadline) break;
  }
  if (!in.ok()) return in.status();
  nlohmann::json answer = nlohmann::json::parse(*in, nullptr, /*allow_exceptions=*/false);
  if (answer.is_discarded() || !answer.is_object()) return absl::DataLossError("incomplete answer on " + path);
  return answer;
}

bool AnswerOk(const nlohmann::json& answer) {
  auto it = answer.find(protocol::kOk);
  return it != answer.end() && it->is_boolean() && it->get<bool>();
}

int64_t AnswerInt(const nlohmann::json& answer, const char* key) {
  auto it = answer.find(key);
  return it != answer.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

std::string AnswerError(const nlohmann::json& answer) {
  auto it = answer.find(protocol::kError);
  return it != answer.end() && it->is_string() ? it->get<std::string>() : "no reason given";
}

}  // namespace nodedns::control
