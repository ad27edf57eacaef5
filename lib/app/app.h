#ifndef NODEDNS_LIB_APP_APP_H_
#define NODEDNS_LIB_APP_APP_H_

// The daemon around the data plane: the control loop (main thread) with the
// signals, the control socket (dnsctl), the HTTP endpoint (/metrics,
// /healthz, /readyz), the snapshot timer, the periodic log summary, reloads,
// privilege dropping and systemd notifications.
//
// Threading: everything here runs on the control loop (the thread that
// calls Run), except snapshot writes, which run on libuv's thread pool and
// read only the thread-safe cache. The workers are reached only through
// server::Server's thread-safe methods.

#include <uv.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "lib/common/clock.h"
#include "lib/config/command_line.h"
#include "lib/config/config.h"

namespace nodedns::app {

class App {
 public:
  // Binds everything, loads the snapshot and drops privileges; nothing
  // serves until Run().
  static absl::StatusOr<std::unique_ptr<App>> Create(const config::CommandLine& cl, const config::Config& config);
  ~App();

  // Serves until SIGTERM/SIGINT; then drains, writes the snapshot and
  // returns the exit code.
  int Run();

 private:
  class Impl;
  explicit App(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nodedns::app

#endif  // NODEDNS_LIB_APP_APP_H_
