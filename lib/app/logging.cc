#include "lib/app/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace nodedns::app {
namespace {

constexpr char kTextPattern[] = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v";

// {"time":"2026-11-22T15:30:00.123Z","level":"warn","msg":"..."}
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    absl::Time t = absl::FromChrono(msg.time);
    nlohmann::json j = {
        {"time", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone())},
        {"level", std::string(spdlog::level::to_string_view(msg.level).data(),
                              spdlog::level::to_string_view(msg.level).size())},
        {"msg", std::string(msg.payload.data(), msg.payload.size())},
    };
    // Invalid UTF-8 in a message (a query name, say) must not throw.
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

}  // namespace

void ApplyLogSettings(const std::string& format, const std::string& level) {
  spdlog::set_level(spdlog::level::from_str(level));
  if (format == "json") {
    spdlog::set_formatter(std::make_unique<JsonFormatter>());
  } else {
    spdlog::set_pattern(kTextPattern);
  }
}

void SetupLogging(const std::string& format, const std::string& level) {
  auto logger = spdlog::stderr_logger_mt("nodedns");
  spdlog::set_default_logger(logger);
  ApplyLogSettings(format, level);
}

std::string CounterLine(const MetricSet& set) {
  std::string line;
  for (const Metric& m : set.metrics()) {
    if (m.kind != MetricKind::kCounter || m.value == 0) continue;
    if (!line.empty()) line += " ";
    line += m.name + "=" + std::to_string(static_cast<uint64_t>(m.value));
  }
  return line.empty() ? "(all zero)" : line;
}

}  // namespace nodedns::app
