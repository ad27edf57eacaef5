#ifndef NODEDNS_LIB_CONFIG_COMMAND_LINE_H_
#define NODEDNS_LIB_CONFIG_COMMAND_LINE_H_

// nodedns's command line. A small parser of our own rather than absl flags:
// --listen and --upstream are repeatable (each occurrence adds an address),
// which absl flags (the last occurrence wins) cannot express, and errors must
// name the offending flag.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/config/config.h"

namespace nodedns::config {

struct CommandLine {
  std::optional<std::string> config_path;
  std::optional<std::string> check_config_path;
  std::vector<std::string> listen;
  std::vector<std::string> upstream;
  std::optional<std::string> log_level;
  std::optional<int> workers;
  std::optional<std::string> ready_file;
  std::optional<std::string> control_socket;
  std::optional<std::string> metrics_listen;
  std::optional<std::string> health_listen;
  std::optional<std::string> snapshot;
  std::optional<std::string> log_format;
  std::optional<std::string> user;
  std::string resolv_conf = "/etc/resolv.conf";
  bool setup_interface = false;
  bool takeover = false;  // hand over from a nodedns serving on our control socket
  bool supervise = false;  // run the daemon as a child, failing open when it dies
  bool withdraw = false;   // remove interface and rules left by a dead daemon, and exit
  bool help = false;
  bool version = false;
  bool print_default_config = false;
};

absl::StatusOr<CommandLine> ParseCommandLine(int argc, const char* const* argv);

// The file (or the embedded default), then the flags on top of it, then
// "resolv.conf" servers resolved. Errors carry file:line or the flag name.
// Start-up, reload and --check-config all go through here, so whatever
// --check-config accepts starts, and whatever it refuses is refused alike.
absl::StatusOr<Config> BuildConfig(const CommandLine& cl);
// The same with the file's text already read (`source` names it in errors).
absl::StatusOr<Config> BuildConfigFromText(const CommandLine& cl, std::string_view text, std::string_view source);

// Applies only the flag overrides to an already loaded config.
absl::Status ApplyOverrides(const CommandLine& cl, Config* config);

std::string Usage();

}  // namespace nodedns::config

#endif  // NODEDNS_LIB_CONFIG_COMMAND_LINE_H_
