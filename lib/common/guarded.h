#ifndef NODEDNS_LIB_COMMON_GUARDED_H_
#define NODEDNS_LIB_COMMON_GUARDED_H_

// The control loop's own callbacks (signals, timers, snapshot completions,
// handover steps) run inside libuv: an exception must be logged there, never
// unwind through libuv and end the process. The data plane does not throw;
// what runs on the control loop builds strings and JSON, which can.

#include <spdlog/spdlog.h>

#include <exception>
#include <utility>

namespace nodedns {

template <typename F>
void Guarded(const char* what, F&& f) noexcept {
  try {
    std::forward<F>(f)();
  } catch (const std::exception& e) {
    spdlog::error("{}: unexpected error: {}", what, e.what());
  } catch (...) {
    spdlog::error("{}: unexpected error", what);
  }
}

}  // namespace nodedns

#endif  // NODEDNS_LIB_COMMON_GUARDED_H_
