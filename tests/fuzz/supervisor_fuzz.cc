// libFuzzer target for the supervisor's hand-over to its child (the
// NODEDNS_SUPERVISOR environment variable, lib/app/supervisor.h): any text
// is refused or read into a state that writes back to text reading the same.

#include <spdlog/spdlog.h>

#include <cstdint>
#include <string>

#include "lib/app/supervisor.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto state = nodedns::app::SupervisorState::FromEnv(text);
  if (!state) return 0;
  auto again = nodedns::app::SupervisorState::FromEnv(state->ToEnv());
  if (!again || again->restarts != state->restarts || again->fail_opens != state->fail_opens ||
      again->last_withdrawal != state->last_withdrawal) {
    __builtin_trap();
  }
  nodedns::MetricSet m;
  state->AppendMetrics(&m);
  return 0;
}
