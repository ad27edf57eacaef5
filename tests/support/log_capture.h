#ifndef NODEDNS_TESTS_SUPPORT_LOG_CAPTURE_H_
#define NODEDNS_TESTS_SUPPORT_LOG_CAPTURE_H_

// Captures what spdlog's default logger writes, for one scope: a fresh
// logger writing to a string becomes the default (and joins spdlog's
// registry, so spdlog::set_level and set_formatter reach it); the previous
// default and level come back on destruction. Not thread-safe with respect to
// other threads that log.

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace nodedns::testing {

class LogCapture {
 public:
  // `pattern` "%v" keeps only the message.
  explicit LogCapture(const std::string& pattern = "%v")
      : previous_(spdlog::default_logger()), previous_level_(spdlog::get_level()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    logger_ = std::make_shared<spdlog::logger>("nodedns-test-capture", sink);
    logger_->set_pattern(pattern);
    logger_->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger_);
  }
  ~LogCapture() {
    spdlog::drop("nodedns-test-capture");
    spdlog::set_default_logger(previous_);
    spdlog::set_level(previous_level_);
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::string text() const { return out_.str(); }
  // The lines written so far, without their newlines.
  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    std::istringstream in(out_.str());
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
  void clear() { out_.str(""); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<spdlog::logger> previous_;
  spdlog::level::level_enum previous_level_;
};

}  // namespace nodedns::testing

#endif  // NODEDNS_TESTS_SUPPORT_LOG_CAPTURE_H_
