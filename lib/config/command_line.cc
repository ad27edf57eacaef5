#include "lib/config/command_line.h"

#include <tuple>

#include <algorithm>
#include <charconv>
#include <string_view>

#include "absl/status/status.h"

namespace nodedns::config {

std::string Usage() {
  return R"(usage: nodedns [flags]

A node-local resilient DNS cache.

  --config FILE         TOML configuration file, applied on top of the embedded
                        default config (--print-default-config shows it)
  --check-config FILE   validate FILE as start-up and reload would (with the other
                        flags on top, resolv.conf read) and exit: 0 if valid,
                        1 with FILE:LINE: reason
  --listen ADDR:PORT    listen on ADDR:PORT, UDP and TCP (repeatable; IPv6 as
                        [::1]:PORT; port 0 picks a free port). Replaces [server] listen.
  --upstream ADDR:PORT  forward the root zone "." to ADDR:PORT (repeatable).
                        Replaces the servers of zone ".".
  --workers N           number of UDP event-loop threads (default 1)
  --log-level LEVEL     trace, debug, info, warn, error, critical, off
  --log-format FORMAT   text or json (one JSON object per line)
  --control-socket PATH Unix socket for dnsctl (default /run/nodedns/control.sock;
                        "" turns it off). Replaces [control] socket.
  --metrics-listen ADDR:PORT
                        HTTP /metrics, /healthz, /readyz (default 127.0.0.1:9253;
                        port 0 picks a free port; "" turns it off)
  --health-listen ADDR:PORT
                        /healthz and /readyz on an address of their own (then
                        not on the metrics address); "" (default): with /metrics
  --snapshot PATH       persistent cache file, loaded at start and written every
                        [snapshot] interval_s and at shutdown
  --setup-interface     create (or adopt) the [interface] dummy interface holding
                        the listen addresses before binding; removed on exit
  --takeover            if a nodedns serves on the control socket, take over from
                        it without a gap (zero-gap upgrade); without this flag a
                        second nodedns refuses to start
  --supervise           run nodedns as a child process; if it dies unexpectedly,
                        withdraw the [interface] addresses and NOTRACK rules at
                        once (fail open: queries to a service IP go to the cluster
                        DNS again), then start it again with backoff
  --withdraw            do that withdrawal now and exit (systemd ExecStopPost=):
                        nothing is touched while a nodedns answers on the
                        control socket
  --user NAME           when started as root: bind, then run as user NAME (and
                        its primary group), with no capabilities left
  --ready-file PATH     once every listener is bound, write the bound addresses
                        to PATH (one per line: "ADDR:PORT" for DNS, then
                        "metrics ADDR:PORT" and "control PATH"), for scripts and tests
  --resolv-conf PATH    resolver file for "resolv.conf" servers (default /etc/resolv.conf)
  --print-default-config
                        print the embedded default config (every key, with
                        comments; a start for a --config file) and exit
  --version             print the version and exit
  --help                print this help and exit
)";
}

absl::StatusOr<CommandLine> ParseCommandLine(int argc, const char* const* argv) {
  CommandLine cl;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view name = arg, value;
    bool has_value = false;
    if (arg.substr(0, 2) != "--" && arg != "-h") {
      return absl::InvalidArgumentError("unexpected argument '" + std::string(arg) + "' (see --help)");
    }
    if (size_t eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    auto need_value = [&]() -> absl::StatusOr<std::string> {
      if (has_value) return std::string(value);
      if (i + 1 >= argc) return absl::InvalidArgumentError("flag " + std::string(name) + " needs a value");
      return std::string(argv[++i]);
    };
    // Flags without a value.
    static constexpr std::pair<std::string_view, bool CommandLine::*> kBoolFlags[] = {
        {"--help", &CommandLine::help},
        {"-h", &CommandLine::help},
        {"--version", &CommandLine::version},
        {"--print-default-config", &CommandLine::print_default_config},
        {"--setup-interface", &CommandLine::setup_interface},
        {"--takeover", &CommandLine::takeover},
        {"--supervise", &CommandLine::supervise},
        {"--withdraw", &CommandLine::withdraw},
    };
    // Flags whose value is kept as given (the last occurrence wins).
    static constexpr std::pair<std::string_view, std::optional<std::string> CommandLine::*> kStringFlags[] = {
        {"--config", &CommandLine::config_path},
        {"--check-config", &CommandLine::check_config_path},
        {"--log-level", &CommandLine::log_level},
        {"--ready-file", &CommandLine::ready_file},
        {"--control-socket", &CommandLine::control_socket},
        {"--metrics-listen", &CommandLine::metrics_listen},
        {"--health-listen", &CommandLine::health_listen},
        {"--snapshot", &CommandLine::snapshot},
        {"--log-format", &CommandLine::log_format},
        {"--user", &CommandLine::user},
    };
    bool matched = false;
    for (const auto& [flag, field] : kBoolFlags) {
      if (name == flag) {
        // "--takeover=false" must not turn the takeover on.
        if (has_value) return absl::InvalidArgumentError("flag " + std::string(name) + " takes no value");
        cl.*field = true;
        matched = true;
      }
    }
    if (matched) continue;
    static constexpr std::string_view kOtherValueFlags[] = {"--listen", "--upstream", "--resolv-conf", "--workers"};
    auto string_flag = std::find_if(std::begin(kStringFlags), std::end(kStringFlags),
                                    [&](const auto& f) { return f.first == name; });
    if (string_flag == std::end(kStringFlags) &&
        std::find(std::begin(kOtherValueFlags), std::end(kOtherValueFlags), name) == std::end(kOtherValueFlags)) {
      return absl::InvalidArgumentError("unknown flag '" + std::string(name) + "' (see --help)");
    }
    auto v = need_value();
    if (!v.ok()) return v.status();
    if (string_flag != std::end(kStringFlags)) {
      cl.*(string_flag->second) = *v;
    } else if (name == "--listen") {
      cl.listen.push_back(*v);
    } else if (name == "--upstream") {
      cl.upstream.push_back(*v);
    } else if (name == "--resolv-conf") {
      cl.resolv_conf = *v;
    } else if (name == "--workers") {
      int n = 0;
      auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
      if (ec != std::errc() || p != v->data() + v->size() || n < 1 || n > 64) {
        return absl::InvalidArgumentError("--workers: expected a number from 1 to 64, got '" + *v + "'");
      }
      cl.workers = n;
    }
  }
  return cl;
}

absl::Status ApplyOverrides(const CommandLine& cl, Config* c) {
  if (!cl.listen.empty()) {
    c->listen.clear();
    for (const std::string& l : cl.listen) {
      auto a = SocketAddress::Parse(l);
      if (!a.ok()) return absl::InvalidArgumentError("--listen: " + std::string(a.status().message()));
      c->listen.push_back(*a);
    }
  }
  if (!cl.upstream.empty()) {
    ZoneConfig root;
    root.name = ".";
    for (const std::string& u : cl.upstream) {
      auto a = SocketAddress::Parse(u, 53);
      if (!a.ok()) return absl::InvalidArgumentError("--upstream: " + std::string(a.status().message()));
      root.servers.push_back(*a);
    }
    bool replaced = false;
    for (ZoneConfig& z : c->zones) {
      if (z.name == ".") {
        z.servers = root.servers;  // keeps the zone's other settings
        z.use_resolv_conf = false;
        replaced = true;
      }
    }
    if (!replaced) c->zones.push_back(root);
  }
  if (cl.log_level) {
    if (!IsLogLevel(*cl.log_level)) {
      return absl::InvalidArgumentError(std::string("--log-level: must be one of ") + kLogLevels);
    }
    c->log_level = *cl.log_level;
  }
  if (cl.workers) c->workers = *cl.workers;
  if (cl.log_format) {
    if (*cl.log_format != "text" && *cl.log_format != "json") {
      return absl::InvalidArgumentError("--log-format: must be text or json");
    }
    c->log_format = *cl.log_format;
  }
  if (cl.control_socket) c->control_socket = *cl.control_socket;
  for (auto [flag, value, dst] : {std::tuple{"--metrics-listen", &cl.metrics_listen, &c->metrics_listen},
                                  std::tuple{"--health-listen", &cl.health_listen, &c->health_listen}}) {
    if (!*value) continue;
    if ((*value)->empty()) {
      dst->reset();
      continue;
    }
    auto a = SocketAddress::Parse(**value);
    if (!a.ok()) return absl::InvalidArgumentError(std::string(flag) + ": " + std::string(a.status().message()));
    *dst = *a;
  }
  if (cl.snapshot) c->snapshot_path = *cl.snapshot;
  if (cl.setup_interface) c->interface_setup = true;
  return Validate(*c);
}

namespace {

absl::StatusOr<Config> Complete(const CommandLine& cl, Config c) {
  if (auto s = ApplyOverrides(cl, &c); !s.ok()) return s;
  if (auto s = ResolveUpstreams(&c, cl.resolv_conf); !s.ok()) return s;
  return c;
}

}  // namespace

absl::StatusOr<Config> BuildConfig(const CommandLine& cl) {
  if (!cl.config_path) return Complete(cl, DefaultConfig());
  auto text = ReadConfigFile(*cl.config_path);
  if (!text.ok()) return text.status();
  return BuildConfigFromText(cl, *text, *cl.config_path);
}

absl::StatusOr<Config> BuildConfigFromText(const CommandLine& cl, std::string_view text, std::string_view source) {
  auto parsed = ParseConfigFile(text, source);
  if (!parsed.ok()) return parsed.status();
  return Complete(cl, std::move(*parsed));
}

}  // namespace nodedns::config
