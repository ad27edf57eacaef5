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
  // `args` are passed to nodedns; --ready-file is added, and --listen
  // 127.0.0.1:0 unless args choose listen addresses themselves (flag or
  // config file, then listen_in_args must be true).
  static std::unique_ptr<DaemonProcess> Start(const std::vector<std::string>& args, bool listen_in_args = false);
  ~DaemonProcess();

  uint16_t port() const { return port_; }
  const std::vector<std::string>& addresses() const { return addresses_; }
  bool alive();
  // Sends `signal` (SIGTERM by default), then waits (up to 20 s); returns
  // the exit code, or -1 on a signal or timeout (then it is killed).
  int Stop(int signal = 15);
  std::string log() const;

 private:
  DaemonProcess() = default;
  TempDir dir_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::vector<std::string> addresses_;
  int exit_code_ = -2;
};

// Path of the nodedns binary under test.
std::string NodednsBinary();

}  // namespace nodedns::testing

#endif  // NODEDNS_TESTS_SUPPORT_DAEMON_PROCESS_H_
