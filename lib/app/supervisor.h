#ifndef NODEDNS_LIB_APP_SUPERVISOR_H_
#define NODEDNS_LIB_APP_SUPERVISOR_H_

// Fail open (`nodedns --supervise`, README "Fail open"). The supervisor is
// the container's first process and runs the daemon as its child: a child
// of a killed PID 1 dies with it, so the process that withdraws must be the
// one that outlives the daemon.
//
// When the child dies unexpectedly (a signal: the OOM killer's SIGKILL, an
// abort; or an exit status other than 0 and 1), the supervisor at once
// withdraws the node interface and its NOTRACK rules (`withdraw`; see
// app::WithdrawInterface), so that queries to the cluster DNS service IP
// take kube-proxy's DNAT to CoreDNS as they do on a node without a cache.
// Then it starts the child again, after a backoff that grows while the
// child keeps dying young; the new child puts interface and rules back once
// it is bound. Exit status 0 or 1 is the daemon's own decision (a stop, a
// handover to a successor, an error it reported): it has removed or left
// what it owns, and the supervisor exits with the same status. SIGTERM,
// SIGINT and SIGHUP are passed on to the child; after SIGTERM or SIGINT the
// supervisor exits with the child.
//
// The child learns the supervisor's counts from the environment variable
// NODEDNS_SUPERVISOR (SupervisorState), for `dnsctl stats` and /metrics.
//
// Threading: Supervise runs a single-threaded process (no event loop; it
// waits in sigtimedwait). The rest are plain values and functions.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lib/common/metrics.h"

namespace nodedns::app {

inline constexpr char kSupervisorEnv[] = "NODEDNS_SUPERVISOR";

// What the supervisor tells each child it starts.
struct SupervisorState {
  uint64_t restarts = 0;    // children started after the first
  uint64_t fail_opens = 0;  // withdrawals after an unexpected death
  std::string last_exit;    // "killed by signal 9 (Killed)", "" before any
  absl::Duration last_withdrawal = absl::ZeroDuration();  // death seen to rules and interface gone

  std::string ToEnv() const;
  // nullopt when the variable is malformed (the child then runs as if
  // unsupervised, with a warning).
  static std::optional<SupervisorState> FromEnv(std::string_view text);
  // Group "supervisor" (dnsctl stats, nodedns_supervisor_* in /metrics).
  void AppendMetrics(MetricSet* set) const;
};

// The child's state from the environment, when supervised.
std::optional<SupervisorState> SupervisorStateFromEnvironment();

// The wait before the next start: `min` after a child that lived at least
// `healthy_after`, doubling (up to `max`) while children die younger.
class RestartBackoff {
 public:
  RestartBackoff(absl::Duration min, absl::Duration max, absl::Duration healthy_after)
      : min_(min), max_(max), healthy_after_(healthy_after), next_(min) {}
  absl::Duration Next(absl::Duration lived);

 private:
  absl::Duration min_, max_, healthy_after_, next_;
};

// How a child ended, from its wait status.
enum class ChildEnd {
  kDecided,     // exit status 0 or 1: the daemon's own decision
  kUnexpected,  // killed by a signal, or another exit status
};
ChildEnd ClassifyEnd(int wait_status);
std::string DescribeEnd(int wait_status);

struct SupervisorOptions {
  // The child's command line (argv[0] first); run as /proc/self/exe.
  std::vector<std::string> argv;
  // Called before each start of the child (reads the configuration again).
  std::function<void()> before_start;
  // Withdraws interface and rules; returns what it did, for the log.
  std::function<absl::StatusOr<std::string>()> withdraw;
  absl::Duration min_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(10);
  absl::Duration healthy_after = absl::Seconds(60);
};

// Runs the child until it ends by its own decision or after a stop signal;
// returns the exit status for the supervisor's process.
int Supervise(const SupervisorOptions& options);

}  // namespace nodedns::app

#endif  // NODEDNS_LIB_APP_SUPERVISOR_H_
