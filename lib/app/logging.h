#ifndef NODEDNS_LIB_APP_LOGGING_H_
#define NODEDNS_LIB_APP_LOGGING_H_

// spdlog set up for the daemon: stderr (journald or the container runtime
// collects it), text or one JSON object per line.
//
// Threading: SetupLogging once before any thread starts; ApplyLogSettings
// from the control thread (spdlog's level and formatter swaps are safe).

#include <string>

#include "lib/common/metrics.h"

namespace nodedns::app {

void SetupLogging(const std::string& format, const std::string& level);
void ApplyLogSettings(const std::string& format, const std::string& level);
// "name=value ..." for the counters of `set` that moved (the exit line);
// "(all zero)" when none did.
std::string CounterLine(const MetricSet& set);

}  // namespace nodedns::app

#endif  // NODEDNS_LIB_APP_LOGGING_H_
