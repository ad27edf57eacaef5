#include "lib/app/supervisor.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "lib/common/clock.h"

namespace nodedns::app {

std::string SupervisorState::ToEnv() const {
  // last_exit comes from DescribeEnd: no ';'.
  return "restarts=" + std::to_string(restarts) + ";fail_opens=" + std::to_string(fail_opens) +
         ";last_withdrawal_us=" + std::to_string(absl::ToInt64Microseconds(last_withdrawal)) +
         ";last_exit=" + last_exit;
}

namespace {

template <typename T>
bool ParseNumber(std::string_view v, T* out) {
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), *out);
  return ec == std::errc() && p == v.data() + v.size() && !v.empty();
}

}  // namespace

std::optional<SupervisorState> SupervisorState::FromEnv(std::string_view text) {
  SupervisorState s;
  int seen = 0;
  while (!text.empty()) {
    size_t end = std::min(text.find(';'), text.size());
    std::string_view field = text.substr(0, end);
    text.remove_prefix(std::min(end + 1, text.size()));
    size_t eq = field.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    std::string_view key = field.substr(0, eq), value = field.substr(eq + 1);
    int64_t us = 0;
    bool ok = true;
    if (key == "restarts") {
      ok = ParseNumber(value, &s.restarts);
    } else if (key == "fail_opens") {
      ok = ParseNumber(value, &s.fail_opens);
    } else if (key == "last_withdrawal_us") {
      ok = ParseNumber(value, &us) && us >= 0;
      s.last_withdrawal = absl::Microseconds(us);
    } else if (key == "last_exit") {
      s.last_exit = std::string(value.substr(0, 200));
    } else {
      continue;  // a newer supervisor's field
    }
    if (!ok) return std::nullopt;
    ++seen;
  }
  if (seen < 4) return std::nullopt;
  return s;
}

void SupervisorState::AppendMetrics(MetricSet* set) const {
  set->Gauge("supervisor", "supervised", "1 when nodedns runs under `nodedns --supervise` (fail open)", 1);
  set->Counter("supervisor", "restarts", "Times the supervisor started nodedns again after an unexpected end",
               static_cast<double>(restarts), "supervisor_restarts_total");
  set->Counter("supervisor", "fail_opens",
               "Times the supervisor withdrew the node interface and NOTRACK rules after nodedns died",
               static_cast<double>(fail_opens), "supervisor_fail_opens_total");
  set->Gauge("supervisor", "last_withdrawal_seconds",
             "How long the last withdrawal took, from the death seen to rules and interface gone",
             absl::ToDoubleSeconds(last_withdrawal));
}

std::optional<SupervisorState> SupervisorStateFromEnvironment() {
  const char* text = std::getenv(kSupervisorEnv);
  if (text == nullptr) return std::nullopt;
  auto s = SupervisorState::FromEnv(text);
  if (!s) spdlog::warn("{}: cannot read '{}'; supervisor counts not shown", kSupervisorEnv, text);
  return s;
}

absl::Duration RestartBackoff::Next(absl::Duration lived) {
  if (lived >= healthy_after_) next_ = min_;
  absl::Duration wait = next_;
  next_ = std::min(max_, next_ * 2);
  return wait;
}

ChildEnd ClassifyEnd(int wait_status) {
  if (WIFEXITED(wait_status) && (WEXITSTATUS(wait_status) == 0 || WEXITSTATUS(wait_status) == 1)) {
    return ChildEnd::kDecided;
  }
  return ChildEnd::kUnexpected;
}

std::string DescribeEnd(int wait_status) {
  if (WIFSIGNALED(wait_status)) {
    int sig = WTERMSIG(wait_status);
    const char* name = strsignal(sig);
    return "killed by signal " + std::to_string(sig) + " (" + (name ? name : "?") + ")";
  }
  if (WIFEXITED(wait_status)) return "exited with status " + std::to_string(WEXITSTATUS(wait_status));
  return "ended (wait status " + std::to_string(wait_status) + ")";
}

namespace {

absl::Time MonotonicNow() { return SystemSteadyClock::Get()->Now(); }

pid_t Spawn(const std::vector<std::string>& args, const sigset_t& child_mask) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid != 0) return pid;
  // The child: the signals as they were, and a graceful stop should the
  // supervisor die without stopping us (PID 1's death takes us anyway).
  sigprocmask(SIG_SETMASK, &child_mask, nullptr);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(1);
  execv("/proc/self/exe", argv.data());
  _exit(127);
}

// Reaps every ended child (as PID 1 we inherit orphans); true with
// *status when `child` is among them.
bool ReapChild(pid_t child, int* status) {
  bool ended = false;
  for (;;) {
    int st = 0;
    pid_t pid = waitpid(-1, &st, WNOHANG);
    if (pid <= 0) return ended;
    if (pid == child) {
      *status = st;
      ended = true;
    }
  }
}


}  // namespace

int Supervise(const SupervisorOptions& o) {
  sigset_t handled, original;
  sigemptyset(&handled);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&handled, sig);
  sigprocmask(SIG_BLOCK, &handled, &original);
  SupervisorState state;
  RestartBackoff backoff(o.min_backoff, o.max_backoff, o.healthy_after);
  int stop_signal = 0;
  for (;;) {
    if (o.before_start) o.before_start();
    setenv(kSupervisorEnv, state.ToEnv().c_str(), 1);
    absl::Time started = MonotonicNow();
    pid_t child = Spawn(o.argv, original);
    if (child < 0) {
      spdlog::error("supervisor: cannot start nodedns: {}", strerror(errno));
      return 1;
    }
    spdlog::info("supervisor: nodedns started (pid {}){}", child,
                 state.restarts ? ", restart " + std::to_string(state.restarts) : std::string());
    int status = 0;
    for (;;) {
      siginfo_t info;
      int sig = sigwaitinfo(&handled, &info);
      if (sig < 0) continue;  // EINTR
      if (sig == SIGCHLD) {
        if (ReapChild(child, &status)) break;
        continue;
      }
      if (sig != SIGHUP) stop_signal = sig;
      kill(child, sig);
    }
    absl::Duration lived = MonotonicNow() - started;
    if (stop_signal) {
      spdlog::info("supervisor: nodedns {} after signal {}; stopping", DescribeEnd(status), stop_signal);
      // Killed before it could remove what it owns (a stop while it was
      // starting, before its handlers; a crash while draining): nobody
      // serves on the addresses now.
      if (ClassifyEnd(status) == ChildEnd::kUnexpected) {
        auto withdrawn = o.withdraw();
        if (withdrawn.ok()) {
          spdlog::warn("supervisor: fail open: {}", *withdrawn);
        } else {
          spdlog::error("supervisor: fail open failed: {}", std::string(withdrawn.status().message()));
        }
      }
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (ClassifyEnd(status) == ChildEnd::kDecided) {
      spdlog::info("supervisor: nodedns {}; stopping", DescribeEnd(status));
      return WEXITSTATUS(status);
    }
    // Fail open: first, then everything else.
    absl::Time seen = MonotonicNow();
    absl::StatusOr<std::string> withdrawn = o.withdraw();
    state.last_withdrawal = MonotonicNow() - seen;
    state.last_exit = DescribeEnd(status);
    ++state.fail_opens;
    absl::Duration wait = backoff.Next(lived);
    if (withdrawn.ok()) {
      spdlog::warn("supervisor: nodedns (pid {}) {} after {:.1f} s; fail open: {} ({:.1f} ms in all); restarting in {} ms",
                   child, state.last_exit, absl::ToDoubleSeconds(lived), *withdrawn,
                   absl::ToDoubleMilliseconds(state.last_withdrawal), absl::ToInt64Milliseconds(wait));
    } else {
      spdlog::error("supervisor: nodedns (pid {}) {}; fail open failed: {}; restarting in {} ms", child,
                    state.last_exit, std::string(withdrawn.status().message()), absl::ToInt64Milliseconds(wait));
    }
    // The backoff: a stop signal now ends the supervisor (nothing runs).
    absl::Time until = MonotonicNow() + wait;
    while (MonotonicNow() < until) {
      timespec ts = absl::ToTimespec(std::max(absl::ZeroDuration(), until - MonotonicNow()));
      siginfo_t info;
      int sig = sigtimedwait(&handled, &info, &ts);
      if (sig == SIGTERM || sig == SIGINT) {
        spdlog::info("supervisor: signal {} while nodedns was down; stopping", sig);
        return 0;
      }
      if (sig == SIGCHLD) ReapChild(-1, &status);
    }
    ++state.restarts;
  }
}

}  // namespace nodedns::app
