#ifndef NODEDNS_LIB_CONFIG_CONFIG_H_
#define NODEDNS_LIB_CONFIG_CONFIG_H_

// The daemon's configuration: the data plane's options (server::ServerOptions,
// which composes each component's own) and the daemon's settings, every knob
// with its default, loaded from TOML (toml++). The defaults live in lib/config/default.toml,
// which is embedded in the binary, so the file, the binary and the README
// agree. Errors name the file and line: "nodedns.toml:12: reason".

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lib/common/socket_address.h"
#include "lib/server/options.h"

namespace nodedns::config {

inline constexpr char kResolvConfMarker[] = "resolv.conf";

using ZoneConfig = server::ZoneOptions;

// The data plane's options (lib/server/options.h) and the daemon's own.
struct Config : server::ServerOptions {
  // [server] On SIGTERM without a successor, keep serving this long for one
  // to take over (zero-gap upgrades); 0: stop at once.
  absl::Duration handover_grace = absl::ZeroDuration();
  // [log]
  std::string log_level = "info";
  std::string log_format = "text";  // "text" or "json" (one JSON object per line)
  absl::Duration log_summary_interval = absl::Seconds(300);  // 0: no periodic summary
  // [interface]
  bool interface_setup = false;
  std::string interface_name = "nodedns0";
  std::vector<SocketAddress> interface_addresses;  // empty: the listen addresses
  bool interface_notrack = false;
  // [control]
  std::string control_socket = "/run/nodedns/control.sock";  // "": no control socket
  int control_socket_mode = 0660;
  std::string control_socket_owner;  // user name; "": the process's user
  std::string control_socket_group;  // group name; "": the process's group
  // [metrics]
  std::optional<SocketAddress> metrics_listen;  // nullopt: no HTTP endpoint
  // [health] listen: /healthz and /readyz on an address of their own (and
  // then not on metrics_listen); nullopt: on metrics_listen.
  std::optional<SocketAddress> health_listen;
  // [snapshot]
  std::string snapshot_path;  // "": no persistent cache
  absl::Duration snapshot_interval = absl::Seconds(60);

  std::string source;  // where it was loaded from, for messages
};

// Parses TOML text. `source_name` is used in error messages. The text is
// checked against the limits of text_check.h first.
absl::StatusOr<Config> ParseConfig(std::string_view text, std::string_view source_name);
// The same for a whole file's text: a last line without a newline is
// refused too (a file caught while being written).
absl::StatusOr<Config> ParseConfigFile(std::string_view text, std::string_view path);
// Reads a file, refusing one over kMaxConfigBytes without reading it all.
absl::StatusOr<std::string> ReadConfigFile(const std::string& path);
// ReadConfigFile, then ParseConfigFile.
absl::StatusOr<Config> LoadConfigFile(const std::string& path);
// The embedded default configuration.
Config DefaultConfig();
// The embedded default configuration's text (lib/config/default.toml).
std::string_view DefaultConfigText();

// The nameserver lines of a resolv.conf file, port 53.
absl::StatusOr<std::vector<SocketAddress>> ReadResolvConf(const std::string& path);

// Fills zones marked use_resolv_conf from `resolv_conf_path`, leaving out any
// server that is one of our own listen addresses (a forwarding loop).
absl::Status ResolveUpstreams(Config* config, const std::string& resolv_conf_path);

// Settings a reload cannot apply (they need new sockets, a new cache or a
// new control or metrics endpoint): sets each one that differs in `next` back
// to its `running` value, and returns one note per group that changed.
std::vector<std::string> KeepRestartOnly(const Config& running, Config* next);

// True for the spdlog level names accepted in [log] level and --log-level.
bool IsLogLevel(std::string_view level);
inline constexpr char kLogLevels[] = "trace, debug, info, warn, error, critical, off";

// Cross-field checks: at least one listen address and one to kMaxZones
// zones, every zone with servers, no duplicate zone.
absl::Status Validate(const Config& config);

}  // namespace nodedns::config

#endif  // NODEDNS_LIB_CONFIG_CONFIG_H_
