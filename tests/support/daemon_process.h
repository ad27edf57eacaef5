#ifndef NODEDNS_TESTS_SUPPORT_DAEMON_PROCESS_H_
#define NODEDNS_TESTS_SUPPORT_DAEMON_PROCESS_H_

// Runs the real nodedns binary as a child process on a free loopback port
// (--listen 127.0.0.1:0 and --ready-file), and stops it by its PID.

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

namespace nodedns::testing {

// A fresh temporary directory, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

class DaemonProcess {
 public:
  struct Options {
    std::vector<std::string> args;
    bool listen_in_args = false;
    // Extra environment ("NAME=VALUE"), and a command the daemon runs under
    // (e.g. {"unshare", "-m", ...}); the wrapper must exec nodedns in place.
    std::vector<std::string> env;
    std::vector<std::string> wrapper;
  };
  // `args` are passed to nodedns; --ready-file is added, --listen
  // 127.0.0.1:0 unless args choose listen addresses themselves (flag or
  // config file, then listen_in_args must be true), and --control-socket
  // (in the process's own directory) and --metrics-listen 127.0.0.1:0
  // unless args set them.
  static std::unique_ptr<DaemonProcess> Start(const std::vector<std::string>& args, bool listen_in_args = false);
  static std::unique_ptr<DaemonProcess> Start(const Options& options);
  ~DaemonProcess();

  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::vector<std::string>& addresses() const { return addresses_; }
  // "127.0.0.1:PORT" of the HTTP endpoint, "" if off.
  const std::string& metrics_address() const { return metrics_; }
  // The probes' own address ([health] listen), "" when they are served with
  // /metrics.
  const std::string& health_address() const { return health_; }
  // The control socket's path, "" if off.
  const std::string& control_socket() const { return control_; }
  // The --ready-file path (rewritten by a restarted child under --supervise).
  std::string ready_file() const { return dir_.path() + "/ready"; }
  // Runs the real dnsctl against this daemon; returns its exit code and
  // fills *out with stdout (and stderr after it).
  int Dnsctl(const std::vector<std::string>& args, std::string* out) const;
  bool alive();
  // Sends `signal` (SIGTERM by default; 0 sends nothing), then waits (up to 20 s); returns
  // the exit code, or -1 on a signal or timeout (then it is killed).
  int Stop(int signal = 15);
  std::string log() const;

 private:
  DaemonProcess() = default;
  TempDir dir_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::vector<std::string> addresses_;
  std::string metrics_;
  std::string health_;
  std::string control_;
  int exit_code_ = -2;
};

// Paths of the binaries under test.
std::string NodednsBinary();
std::string DnsctlBinary();

// Runs a program (argv[0] looked up in PATH), stdout and stderr into *out;
// returns its exit code (-1 if it did not exit normally).
int RunProgram(const std::vector<std::string>& argv, std::string* out);

}  // namespace nodedns::testing

#endif  // NODEDNS_TESTS_SUPPORT_DAEMON_PROCESS_H_
