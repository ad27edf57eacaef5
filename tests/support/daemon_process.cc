#include "tests/support/daemon_process.h"

#include <cstdlib>
#include <fcntl.h>
#include <sys/prctl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace nodedns::testing {

std::string NodednsBinary() { return NODEDNS_BINARY; }
std::string DnsctlBinary() { return DNSCTL_BINARY; }

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "nodedns-test-XXXXXX").string();
  char* p = mkdtemp(tmpl.data());
  path_ = p ? p : "";
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Write(const std::string& name, const std::string& content) const {
  std::string file = path_ + "/" + name;
  std::ofstream(file, std::ios::trunc) << content;
  return file;
}

std::unique_ptr<DaemonProcess> DaemonProcess::Start(const std::vector<std::string>& args, bool listen_in_args) {
  Options o;
  o.args = args;
  o.listen_in_args = listen_in_args;
  return Start(o);
}

#ifndef NODEDNS_TEST_WORKERS
#define NODEDNS_TEST_WORKERS ""
#endif

std::unique_ptr<DaemonProcess> DaemonProcess::Start(const Options& o) {
  std::unique_ptr<DaemonProcess> d(new DaemonProcess());
  std::string ready = d->dir_.path() + "/ready";
  std::string log = d->dir_.path() + "/log";
  std::vector<std::string> argv_s = o.wrapper;
  argv_s.insert(argv_s.end(), {NodednsBinary(), "--ready-file", ready});
  auto has = [&](const char* flag) {
    for (const std::string& a : o.args) {
      if (a == flag || a.rfind(std::string(flag) + "=", 0) == 0) return true;
    }
    return false;
  };
  if (!o.listen_in_args) argv_s.insert(argv_s.end(), {"--listen", "127.0.0.1:0"});
  if (!has("--control-socket")) argv_s.insert(argv_s.end(), {"--control-socket", d->dir_.path() + "/control.sock"});
  if (!has("--metrics-listen")) argv_s.insert(argv_s.end(), {"--metrics-listen", "127.0.0.1:0"});
  // --workers N unless the test chooses: NODEDNS_TEST_WORKERS=N, or the
  // build's default (the ThreadSanitizer build's tests run two workers).
  const char* workers = std::getenv("NODEDNS_TEST_WORKERS");
  if (workers == nullptr) workers = NODEDNS_TEST_WORKERS;
  if (workers != nullptr && *workers != '\0' && !has("--workers")) argv_s.insert(argv_s.end(), {"--workers", workers});
  argv_s.insert(argv_s.end(), o.args.begin(), o.args.end());
  // For a developer chasing a failure: NODEDNS_TEST_LOG_LEVEL=debug.
  if (const char* level = std::getenv("NODEDNS_TEST_LOG_LEVEL")) argv_s.insert(argv_s.end(), {"--log-level", level});
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    // A test that dies (an abort, a crash) takes its daemon with it: no
    // orphan keeps ports and CPU. (Daemons are started from the test's main
    // thread; the signal follows the thread that forked.)
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    for (const std::string& e : o.env) putenv(strdup(e.c_str()));
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  d->pid_ = pid;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    if (std::filesystem::exists(ready)) {
      std::ifstream in(ready);
      std::string line;
      while (std::getline(in, line)) {
        if (line.rfind("metrics ", 0) == 0) {
          d->metrics_ = line.substr(8);
        } else if (line.rfind("health ", 0) == 0) {
          d->health_ = line.substr(7);
        } else if (line.rfind("control ", 0) == 0) {
          d->control_ = line.substr(8);
        } else if (!line.empty()) {
          d->addresses_.push_back(line);
        }
      }
      if (!d->addresses_.empty()) {
        d->port_ = static_cast<uint16_t>(std::stoi(d->addresses_[0].substr(d->addresses_[0].rfind(':') + 1)));
        return d;
      }
    }
    if (!d->alive()) return d;  // exited: port() stays 0, log() says why
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return d;
}

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0 && alive()) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

bool DaemonProcess::alive() {
  if (pid_ <= 0 || exit_code_ != -2) return false;
  int st = 0;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == 0) return true;
  exit_code_ = (r == pid_ && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
  return false;
}

int DaemonProcess::Stop(int signal) {
  if (!alive()) return exit_code_;
  kill(pid_, signal);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!alive()) return exit_code_;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  exit_code_ = -1;
  return -1;
}

int DaemonProcess::Dnsctl(const std::vector<std::string>& args, std::string* out) const {
  std::vector<std::string> cmd = {DnsctlBinary(), "--socket", control_};
  cmd.insert(cmd.end(), args.begin(), args.end());
  return RunProgram(cmd, out);
}

int RunProgram(const std::vector<std::string>& cmd, std::string* out) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 1);
    dup2(pipefd[1], 2);
    std::vector<char*> argv;
    std::vector<std::string> copy = cmd;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  close(pipefd[1]);
  out->clear();
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof(buf))) > 0) out->append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::string DaemonProcess::log() const {
  std::ifstream in(dir_.path() + "/log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace nodedns::testing
