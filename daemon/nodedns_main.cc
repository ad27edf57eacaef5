// nodedns: a node-local resilient DNS cache. See README.md.
//
// main() parses the command line and configuration, binds the listeners,
// starts the workers and waits for SIGTERM/SIGINT on a libuv loop of its own.

#include <signal.h>
#include <spdlog/spdlog.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <uv.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "absl/synchronization/mutex.h"
#include "lib/common/clock.h"
#include "lib/config/command_line.h"
#include "lib/config/config.h"
#include "lib/server/server.h"

namespace {

using nodedns::config::CommandLine;

int Fail(const std::string& message) {
  std::fprintf(stderr, "nodedns: %s\n", message.c_str());
  return 1;
}

// Writes the bound addresses atomically (temporary file, then rename).
bool WriteReadyFile(const std::string& path, const std::vector<nodedns::SocketAddress>& addresses) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& a : addresses) out << a.ToString() << "\n";
    if (!out.flush()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

void LogSummary(const nodedns::CounterValues& v) {
  std::string line;
  v.ForEach([&](const char* name, const char*, uint64_t value) {
    if (value == 0) return;
    if (!line.empty()) line += " ";
    line += std::string(name) + "=" + std::to_string(value);
  });
  spdlog::info("counters: {}", line.empty() ? "(all zero)" : line);
}

struct SignalContext {
  uv_loop_t* loop;
  nodedns::server::Server* server;
};

void OnSignal(uv_signal_t* handle, int signum) {
  auto* ctx = static_cast<SignalContext*>(handle->data);
  if (signum == SIGHUP) {
    spdlog::warn("SIGHUP received: configuration reload is not implemented yet; ignoring");
    return;
  }
  spdlog::info("signal {} received: shutting down", signum);
  ctx->server->Stop();
  uv_stop(ctx->loop);
}

}  // namespace

int main(int argc, char** argv) {
  auto cl = nodedns::config::ParseCommandLine(argc, argv);
  if (!cl.ok()) return Fail(std::string(cl.status().message()));
  if (cl->help) {
    std::cout << nodedns::config::Usage();
    return 0;
  }
  if (cl->version) {
    std::cout << "nodedns " << NODEDNS_VERSION << "\n";
    return 0;
  }
  if (cl->check_config_path) {
    auto c = nodedns::config::LoadConfigFile(*cl->check_config_path);
    if (!c.ok()) return Fail(std::string(c.status().message()));
    std::cout << *cl->check_config_path << ": OK\n";
    return 0;
  }
  auto config = nodedns::config::BuildConfig(*cl);
  if (!config.ok()) return Fail(std::string(config.status().message()));

  auto logger = spdlog::stderr_color_mt("nodedns");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(config->log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  // A client that closes its TCP connection early must not kill us.
  signal(SIGPIPE, SIG_IGN);
  // absl::Mutex's runtime deadlock detection (on in Debian's absl build) costs
  // a global graph lookup on every lock, cache shards included; lock order
  // is checked at compile time by the ABSL_GUARDED_BY annotations instead.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  auto server = nodedns::server::Server::Create(*config, nodedns::SystemClock::Get());
  if (!server.ok()) return Fail(std::string(server.status().message()));
  (*server)->Start();
  std::string listening;
  for (const auto& a : (*server)->bound_addresses()) listening += " " + a.ToString();
  std::string upstreams;
  for (const auto& z : config->zones) {
    upstreams += " " + z.name + "->";
    for (size_t i = 0; i < z.servers.size(); ++i) upstreams += (i ? "," : "") + z.servers[i].ToString();
  }
  spdlog::info("nodedns {} listening on{} (udp+tcp), forwarding{}", NODEDNS_VERSION, listening, upstreams);
  if (cl->ready_file && !WriteReadyFile(*cl->ready_file, (*server)->bound_addresses())) {
    spdlog::error("cannot write ready file {}", *cl->ready_file);
  }

  uv_loop_t loop;
  uv_loop_init(&loop);
  SignalContext ctx{&loop, server->get()};
  uv_signal_t signals[3];
  int signums[3] = {SIGTERM, SIGINT, SIGHUP};
  for (int i = 0; i < 3; ++i) {
    uv_signal_init(&loop, &signals[i]);
    signals[i].data = &ctx;
    uv_signal_start(&signals[i], &OnSignal, signums[i]);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  for (auto& s : signals) uv_close(reinterpret_cast<uv_handle_t*>(&s), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);

  LogSummary((*server)->Counters());
  server->reset();
  spdlog::info("stopped");
  return 0;
}
