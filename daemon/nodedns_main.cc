// nodedns: a node-local resilient DNS cache. See README.md.
//
// main() parses the command line and configuration and hands over to
// app::App, which binds, serves and shuts down.

#include <signal.h>
#include <sys/resource.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string_view>

#include "absl/synchronization/mutex.h"
#include "lib/app/app.h"
#include "lib/app/logging.h"
#include "lib/app/interface.h"
#include "lib/app/startup_check.h"
#include "lib/app/supervisor.h"
#include "lib/config/command_line.h"
#include "lib/config/config.h"

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "nodedns: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  auto cl = nodedns::config::ParseCommandLine(argc, argv);
  if (!cl.ok()) return Fail(std::string(cl.status().message()));
  if (cl->help) {
    std::cout << nodedns::config::Usage();
    return 0;
  }
  if (cl->print_default_config) {
    std::cout << nodedns::config::DefaultConfigText();
    return 0;
  }
  if (cl->version) {
    std::cout << "nodedns " << NODEDNS_VERSION << "\n";
    return 0;
  }
  if (cl->check_config_path) {
    // What start-up does with the file, short of binding: parse, read the
    // resolv.conf servers, then the checks start-up would fail.
    nodedns::config::CommandLine check = *cl;
    check.config_path = *cl->check_config_path;
    auto c = nodedns::config::BuildConfig(check);
    if (!c.ok()) return Fail(std::string(c.status().message()));
    if (auto st = nodedns::app::CheckStartup(check, *c); !st.ok()) return Fail(std::string(st.message()));
    for (const std::string& w : nodedns::app::HostAddressWarnings(*c)) {
      std::fprintf(stderr, "nodedns: warning: %s: start-up would fail on this host\n", w.c_str());
    }
    std::cout << *cl->check_config_path << ": OK\n";
    return 0;
  }
  auto config = nodedns::config::BuildConfig(*cl);
  if (!config.ok()) return Fail(std::string(config.status().message()));

  nodedns::app::SetupLogging(config->log_format, config->log_level);
  if (cl->withdraw) {
    auto what = nodedns::app::WithdrawInterface(*config);
    if (!what.ok()) return Fail("--withdraw: " + std::string(what.status().message()));
    spdlog::info("--withdraw: {}", *what);
    return 0;
  }
  if (cl->supervise) {
    nodedns::app::SupervisorOptions o;
    for (int i = 0; i < argc; ++i) {
      if (std::string_view(argv[i]) != "--supervise") o.argv.push_back(argv[i]);
    }
    // The withdrawal uses the configuration the child started with (read
    // again before each start; the last good one if the file went bad), so
    // that nothing but removing stands between a death and the rules gone.
    auto current = std::make_shared<nodedns::config::Config>(*config);
    o.before_start = [cl = *cl, current] {
      if (auto now = nodedns::config::BuildConfig(cl); now.ok()) *current = *now;
    };
    o.withdraw = [current] { return nodedns::app::WithdrawInterface(*current); };
    return nodedns::app::Supervise(o);
  }
  // A client that closes its TCP connection early must not kill us.
  signal(SIGPIPE, SIG_IGN);
  // absl::Mutex's runtime deadlock detection (on in Debian's absl build) costs
  // a global graph lookup on every lock, cache shards included; lock order
  // is checked at compile time by the ABSL_GUARDED_BY annotations instead.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Every upstream UDP query has a socket of its own (a random source port,
  // RFC 5452): up to max_inflight per zone and worker. The soft limit (often
  // 1024) goes up to the hard one.
  if (rlimit r; getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &r) != 0) spdlog::warn("cannot raise the open-file limit to {}", r.rlim_max);
  }

  auto app = nodedns::app::App::Create(*cl, *config);
  if (!app.ok()) return Fail(std::string(app.status().message()));
  return (*app)->Run();
}
